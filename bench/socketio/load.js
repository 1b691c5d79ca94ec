// The load of the comparison in `festival-bench relay-cluster`, the same
// as festival-relay's: NODES clients in rooms of ROOM_SIZE, member k of room
// r on server (r + k) mod servers, one author per room, RATE messages/s in
// all for SECS; latency from the author's send to each other member's
// receipt (one process, one clock). Prints {"phase":"load"} when sending
// starts, then one JSON object with the figures.
//   node load.js PORTS(comma-separated) NODES ROOM_SIZE RATE SECS
import { io } from "socket.io-client";

const [portList, nodesArg, roomSizeArg, rateArg, secsArg] = process.argv.slice(2);
const ports = portList.split(",").map(Number);
const [nodes, roomSize, rate, secs] = [nodesArg, roomSizeArg, rateArg, secsArg].map(Number);
const rooms = Math.floor(nodes / roomSize);
const now = () => Number(process.hrtime.bigint()) / 1e6;

const sent = new Map();
const latencies = [];
const cross = [];
const authors = [];
const clients = [];

function connect(port) {
  return new Promise((resolve, reject) => {
    const s = io(`http://127.0.0.1:${port}`, { transports: ["websocket"], reconnection: false });
    s.once("connect", () => resolve(s));
    s.once("connect_error", reject);
  });
}

for (let r = 0; r < rooms; r++) {
  const room = `room-${r}`;
  const authorAt = r % ports.length;
  for (let k = 0; k < roomSize; k++) {
    const at = (r + k) % ports.length;
    const s = await connect(ports[at]);
    await new Promise((resolve) => s.emit("join", room, resolve));
    clients.push(s);
    if (k === 0) {
      authors.push({ s, room });
    } else {
      const isCross = at !== authorAt;
      s.on("msg", (payload) => {
        const t = sent.get(payload.id);
        if (t === undefined) return;
        const ms = now() - t;
        latencies.push(ms);
        if (isCross) cross.push(ms);
      });
    }
  }
}
// Let the adapters settle.
await new Promise((r) => setTimeout(r, 2000));

console.log(JSON.stringify({ phase: "load" }));
const total = rate * secs;
const expected = total * (roomSize - 1);
const started = now();
let n = 0;
await new Promise((resolve) => {
  const tick = setInterval(() => {
    // Catch up to where the clock says the sender should be.
    const due = Math.min(total, Math.floor(((now() - started) / 1000) * rate));
    for (; n < due; n++) {
      const a = authors[n % authors.length];
      const id = `m${n}`;
      sent.set(id, now());
      a.s.emit("msg", a.room, { id, text: `bench message ${n}: ${"x".repeat(100)}` });
    }
    if (n >= total) {
      clearInterval(tick);
      resolve();
    }
  }, 1);
});
const deadline = now() + 20000;
while (latencies.length < expected && now() < deadline) {
  await new Promise((r) => setTimeout(r, 50));
}
const elapsed = (now() - started) / 1000;
// Nearest rank, as festival-bench's own percentiles.
const pct = (v, p) => {
  if (v.length === 0) return null;
  const s = [...v].sort((a, b) => a - b);
  const i = Math.min(Math.max(Math.ceil(s.length * p), 1), s.length) - 1;
  return Math.round(s[i] * 1000) / 1000;
};
console.log(
  JSON.stringify({
    expected_deliveries: expected,
    delivered: latencies.length,
    cross_instance_deliveries: cross.length,
    fanout_p50_ms: pct(latencies, 0.5),
    fanout_p99_ms: pct(latencies, 0.99),
    cross_fanout_p99_ms: pct(cross, 0.99),
    elapsed_s: elapsed,
  }),
);
for (const s of clients) s.close();
process.exit(0);
