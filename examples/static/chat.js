// The chat page's script. `signalR` is the global of @microsoft/signalr's browser bundle.
// Everything goes through the hub (examples/_chat_hub.py): the page invokes its methods, and the
// app answers and sends to the page's `connection.on(...)` handlers.
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

// invoke() resolves with the hub method's result, or rejects with its error: the text of a
// HubMethodError, or a generic message for any other exception in the app.
async function invoke(method, ...args) {
  try {
    return { ok: true, result: await connection.invoke(method, ...args) };
  } catch (error) {
    show("error", "", `${method}: ${error.message}`);
    return { ok: false };
  }
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
  connection.on("presence", (who, what) => show("presence", "", `${who} ${what}.`));
  connection.on("cleared", (who) => {
    $("messages").replaceChildren();
    show("info", "", `${who} cleared the messages.`);
  });
  // A client result: the app awaits what this handler returns (the hub's `clear`).
  connection.on("confirm", (question) => window.confirm(question));
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

$("send").addEventListener("submit", async (event) => {
  event.preventDefault();
  const to = $("to").value.trim();
  const text = $("text").value;
  const sent = {
    all: () => invoke("send", text),
    user: () => invoke("sendToUser", to, text),
    group: () => invoke("sendToGroup", to, text),
  }[$("audience").value];
  if ((await sent()).ok) $("text").value = "";
});

$("join").addEventListener("submit", async (event) => {
  event.preventDefault();
  const group = $("group").value.trim();
  if ((await invoke("join", group)).ok) show("info", "", `You joined ${group}.`);
});

// A stream: the hub's `countdown` yields 3, 2, 1, 0, and the page shows each as it comes.
$("countdown").addEventListener("click", () => {
  connection.stream("countdown", 3).subscribe({
    next: (number) => show("stream", "", `countdown: ${number}`),
    complete: () => show("stream", "", "countdown: done"),
    error: (error) => show("error", "", `countdown: ${error.message}`),
  });
});

$("clear").addEventListener("click", () => invoke("clear"));
