'use strict';
// Received SIP messages kept in order until a test asks for one; shared by the scripted
// WebSocket and UDP peers.
class MessageQueue {
  constructor() {
    this.queue = [];
    this.waiters = [];
  }

  push(msg) {
    this.queue.push(msg);
    this.pump();
  }

  pump() {
    for (let i = 0; i < this.waiters.length; i++) {
      const w = this.waiters[i];
      const idx = this.queue.findIndex(w.pred);
      if (idx >= 0) {
        const [msg] = this.queue.splice(idx, 1);
        this.waiters.splice(i, 1);
        i--;
        clearTimeout(w.timer);
        w.resolve(msg);
      }
    }
  }

  // The first queued or arriving message matching pred. After timeout ms, onTimeout() decides:
  // its value resolves the wait, or what it throws rejects it.
  wait(pred, timeout, onTimeout) {
    return new Promise((resolve, reject) => {
      const w = { pred, resolve };
      w.timer = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        try { resolve(onTimeout()); } catch (e) { reject(e); }
      }, timeout);
      this.waiters.push(w);
      this.pump();
    });
  }
}

module.exports = { MessageQueue };
