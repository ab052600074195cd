// A real @microsoft/signalr client in Node, driven line by line from tests/e2e (support.NodeHub).
//
//   node hub_client.cjs '{"app": "http://127.0.0.1:8000", "user": "ada", "protocol": "messagepack"}'
//
// Reads one JSON command per line on stdin and writes one JSON event per line on stdout (the
// client's own log goes to stderr). Commands:
//   {"do": "start"}                                   -> started {connectionId} | error {stage}
//   {"do": "invoke", "id": 1, "method": "send", "args": ["hi"]}   -> result {id, value} | failed {id, message}
//   {"do": "stream", "id": 2, "method": "countdown", "args": [3]} -> item {id, value}..., then
//                                                         completed {id} | failed {id, message}
//   {"do": "answer", "value": true}   what the next "confirm" asks answer (a client result)
//   {"do": "stop"}                                    -> stopped, then the process exits
// Events the client sees on its own: message {target, args} for every method the chat sends,
// asked {args} when the app invokes "confirm" (it gets the last "answer"), reconnecting {error},
// reconnected {connectionId}, closed {error}.
"use strict";

const readline = require("node:readline");
const signalR = require("@microsoft/signalr");
const { MessagePackHubProtocol } = require("@microsoft/signalr-protocol-msgpack");

const { app, user, protocol = "json" } = JSON.parse(process.argv[2]);

function emit(event, fields = {}) {
  process.stdout.write(JSON.stringify({ event, ...fields }) + "\n");
}

function text(error) {
  return String(error?.message ?? error);
}

let builder = new signalR.HubConnectionBuilder()
  .withUrl(`${app}/chat?user=${encodeURIComponent(user)}`)
  // Retry every half second for a minute: a restarted app is back within seconds.
  .withAutomaticReconnect({
    nextRetryDelayInMilliseconds: (context) =>
      context.elapsedMilliseconds < 60000 ? 500 : null,
  })
  .configureLogging(signalR.LogLevel.Warning);
if (protocol === "messagepack") builder = builder.withHubProtocol(new MessagePackHubProtocol());
const connection = builder.build();

for (const target of ["newMessage", "directMessage", "groupMessage", "presence", "cleared"]) {
  connection.on(target, (...args) => emit("message", { target, args }));
}
let answer = true;
connection.on("confirm", (...args) => {
  emit("asked", { args });
  return answer;
});
connection.onreconnecting((error) => emit("reconnecting", { error: error ? text(error) : null }));
connection.onreconnected((connectionId) => emit("reconnected", { connectionId }));
connection.onclose((error) => emit("closed", { error: error ? text(error) : null }));

const commands = {
  async start() {
    try {
      await connection.start();
      emit("started", { connectionId: connection.connectionId, protocol });
    } catch (error) {
      emit("error", { stage: "start", message: text(error) });
    }
  },
  async invoke({ id, method, args = [] }) {
    try {
      emit("result", { id, value: await connection.invoke(method, ...args) });
    } catch (error) {
      emit("failed", { id, message: text(error) });
    }
  },
  stream({ id, method, args = [] }) {
    connection.stream(method, ...args).subscribe({
      next: (value) => emit("item", { id, value }),
      complete: () => emit("completed", { id }),
      error: (error) => emit("failed", { id, message: text(error) }),
    });
  },
  answer({ value }) {
    answer = value;
  },
  async stop() {
    await connection.stop();
    emit("stopped");
    process.exit(0);
  },
};

readline.createInterface({ input: process.stdin }).on("line", (line) => {
  const command = JSON.parse(line);
  Promise.resolve(commands[command.do](command)).catch((error) =>
    emit("error", { stage: command.do, message: text(error) }),
  );
});
process.stdin.on("end", () => process.exit(0));
emit("version", { client: signalR.VERSION, node: process.version });
