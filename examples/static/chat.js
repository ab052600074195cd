// The chat page's script. `signalR` is the global of @microsoft/signalr's browser bundle.
"use strict";

const $ = (id) => document.getElementById(id);
let user = "";
let connection = null;

function setStatus(state, text) {
  $("status").dataset.state = state;
  $("status").textContent = text;
}

function show(kind, from, text) {
  const item = document.createElement("li");
  item.dataset.kind = kind;
  item.textContent = from ? `${from}: ${text}` : text;
  $("messages").append(item);
}

// What the page says goes through the app, which sends it on with the service's REST API...
async function post(path, body) {
  const response = await fetch(path, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
  if (!response.ok) show("error", "", `${path}: ${response.status} ${await response.text()}`);
  return response.ok;
}

$("login").addEventListener("submit", async (event) => {
  event.preventDefault();
  user = $("user").value.trim();
  // The app's /chat/negotiate answers {url, accessToken}: the client follows it to the service.
  connection = new signalR.HubConnectionBuilder()
    .withUrl("/chat?user=" + encodeURIComponent(user))
    .withAutomaticReconnect()
    .configureLogging(signalR.LogLevel.Warning)
    .build();
  connection.on("newMessage", (from, text) => show("all", from, text));
  connection.on("directMessage", (from, text) => show("user", `${from} (to you)`, text));
  connection.on("groupMessage", (group, from, text) => show("group", `${from} [${group}]`, text));
  // The app's answers to the service's upstream calls: who connected and who left.
  connection.on("presence", (who, what) => show("presence", "", `${who} ${what}.`));
  connection.onreconnecting(() => setStatus("reconnecting", "Reconnecting…"));
  connection.onreconnected(() => setStatus("connected", `Connected as ${user}.`));
  connection.onclose((error) => setStatus("closed", `Disconnected${error ? ": " + error.message : "."}`));
  setStatus("connecting", "Connecting…");
  try {
    await connection.start();
  } catch (error) {
    setStatus("failed", `Could not connect: ${error.message}`);
    return;
  }
  setStatus("connected", `Connected as ${user}.`);
  $("login").hidden = true;
  $("chat").hidden = false;
  $("text").focus();
});

// ...or through the service: invoke() the hub's send, which the service POSTs to the app's
// upstream URL; the app's answer ("delivered") is what invoke() returns.
async function invokeSend(text) {
  try {
    await connection.invoke("send", text);
    return true;
  } catch (error) {
    show("error", "", `send: ${error.message}`);
    return false;
  }
}

$("send").addEventListener("submit", async (event) => {
  event.preventDefault();
  const audience = $("audience").value;
  if (audience === "hub") {
    if (await invokeSend($("text").value)) $("text").value = "";
    return;
  }
  const to = encodeURIComponent($("to").value.trim());
  const path = { all: "/messages", user: `/users/${to}/messages`, group: `/groups/${to}/messages` };
  if (await post(path[audience], { user, text: $("text").value })) $("text").value = "";
});

$("join").addEventListener("submit", async (event) => {
  event.preventDefault();
  const group = $("group").value.trim();
  if (await post(`/groups/${encodeURIComponent(group)}/members`, { user })) {
    show("info", "", `You joined ${group}.`);
  }
});
