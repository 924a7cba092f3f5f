'use strict';
// A TCP relay on a free loopback port in front of a real server (Redis, for a test), whose
// connections can be cut without being closed: what is sent on them from then on is dropped and
// neither end is told, as on a path gone silent (a firewall or NAT that forgot the connection, a
// host gone without a reset). Connections made afterwards are carried as before.
//   const r = await startRelay(redis.port);   r.port, r.url -> 'redis://127.0.0.1:PORT/0'
//   r.cut()             -> every connection open now drops what either end sends, and stays open
//   r.cut('requests')   -> ... drops only what the clients send (the server's data still comes)
//   r.connections()     -> how many it carries
//   await r.close()
const net = require('node:net');

async function startRelay(targetPort, host = '127.0.0.1') {
  const conns = new Set();
  const server = net.createServer((client) => {
    const upstream = net.connect(targetPort, host);
    const c = { client, upstream, toServer: true, toClient: true, cut: false };
    conns.add(c);
    client.on('data', (b) => c.toServer && upstream.write(b));
    upstream.on('data', (b) => c.toClient && client.write(b));
    const end = () => {
      conns.delete(c);
      client.destroy();
      upstream.destroy();
    };
    client.on('close', end);
    // A cut connection hears nothing of the server, not even its going.
    upstream.on('close', () => !c.cut && end());
    client.on('error', () => {});
    upstream.on('error', () => {});
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, resolve);
  });
  const { port } = server.address();
  return {
    port,
    url: `redis://${host}:${port}/0`,
    cut(what = 'both') {
      for (const c of conns) {
        c.cut = true;
        c.toServer = false;
        if (what === 'both') c.toClient = false;
      }
    },
    connections: () => conns.size,
    close() {
      for (const c of conns) {
        c.client.destroy();
        c.upstream.destroy();
      }
      return new Promise((resolve) => server.close(resolve));
    },
  };
}

module.exports = { startRelay };
