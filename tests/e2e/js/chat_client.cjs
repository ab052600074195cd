// One chat session with the real @microsoft/signalr client in Node, for tests/e2e.
//
//   node chat_client.cjs '{"app": "http://127.0.0.1:8000", "user": "ada", "group": "g1"}'
//
// Negotiates through the app (which redirects to the service), connects, joins a group through the
// app, then POSTs one message to everyone, one to this user and one to the group, and waits for all
// three to arrive. With "viaHub": true it instead invokes the hub's send (the service calls the
// app's upstream), then a method the app does not have, and waits for its own message and its
// presence ("joined"). Prints one JSON line per event on stdout (the client's own log goes to
// stderr). Exit codes: 0 all arrived, 1 an error (event "error" says where), 2 timed out.
"use strict";

const signalR = require("@microsoft/signalr");

const { app, user, group, viaHub = false, timeoutMs = 15000 } = JSON.parse(process.argv[2]);
const HUB_TEXT = "hello through the hub";

function emit(event, fields = {}) {
  process.stdout.write(JSON.stringify({ event, ...fields }) + "\n");
}

async function post(path, body) {
  const response = await fetch(app + path, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
  emit("posted", { path, status: response.status });
  if (!response.ok) throw new Error(`${path} answered ${response.status}: ${await response.text()}`);
}

async function main() {
  emit("version", { client: signalR.VERSION, node: process.version });
  const connection = new signalR.HubConnectionBuilder()
    .withUrl(`${app}/chat?user=${encodeURIComponent(user)}`)
    .configureLogging(signalR.LogLevel.Warning) // console.warn and console.error: stderr
    .build();

  const expected = viaHub ? ["hub", "presence"] : ["all", "user", "group"];
  const received = new Set();
  let allArrived;
  const arrived = new Promise((resolve) => (allArrived = resolve));
  const on = (kind) => (...args) => {
    emit("message", { kind, args });
    received.add(kind);
    if (expected.every((k) => received.has(k))) allArrived();
  };
  connection.on("newMessage", (from, text) => on(text === HUB_TEXT ? "hub" : "all")(from, text));
  connection.on("directMessage", on("user"));
  connection.on("groupMessage", on("group"));
  connection.on("presence", (who, what) => {
    if (who === user && what === "joined") on("presence")(who, what);
  });

  try {
    await connection.start();
  } catch (error) {
    emit("error", { stage: "start", message: String(error.message ?? error) });
    return 1;
  }
  emit("connected", { connectionId: connection.connectionId });

  if (viaHub) {
    emit("invoked", { result: await connection.invoke("send", HUB_TEXT) });
    try {
      await connection.invoke("shout", "hi");
      emit("invoked", { result: "shout did not fail" });
    } catch (error) {
      emit("invokeError", { message: String(error.message ?? error) });
    }
  } else {
    const to = encodeURIComponent;
    await post(`/groups/${to(group)}/members`, { user });
    await post("/messages", { user, text: "hello, everyone" });
    await post(`/users/${to(user)}/messages`, { user, text: "a note to myself" });
    await post(`/groups/${to(group)}/messages`, { user, text: "hello, group" });
  }
  await arrived;

  await connection.stop();
  emit("stopped");
  return 0;
}

setTimeout(() => {
  emit("timeout", { timeoutMs });
  process.exit(2);
}, timeoutMs).unref();

main().then(
  (code) => process.exit(code),
  (error) => {
    emit("error", { stage: "run", message: String(error.message ?? error) });
    process.exit(1);
  },
);
