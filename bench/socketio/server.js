// One Socket.IO server of the comparison in `festival-bench relay-cluster`:
// the Redis Streams adapter passes room broadcasts between servers, as the
// seed design would have run it. A client joins rooms and sends a message
// to a room; the servers pass it to every other member, wherever connected.
//   node server.js REDIS_SOCKET       (prints {"listening": PORT})
import { createServer } from "node:http";
import { Server } from "socket.io";
import { createClient } from "redis";
import { createAdapter } from "@socket.io/redis-streams-adapter";

const [redisSocket] = process.argv.slice(2);
const redis = createClient({ socket: { path: redisSocket } });
await redis.connect();
const io = new Server({ adapter: createAdapter(redis), transports: ["websocket"] });
io.on("connection", (socket) => {
  socket.on("join", (room, ack) => {
    socket.join(room);
    if (ack) ack();
  });
  socket.on("msg", (room, payload) => socket.to(room).emit("msg", payload));
});
// A port the kernel picks: thousands of client sockets take ports too.
const http = createServer();
io.attach(http);
http.listen(0, "127.0.0.1", () => console.log(JSON.stringify({ listening: http.address().port })));
