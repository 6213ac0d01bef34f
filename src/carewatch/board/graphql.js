// GraphQL clients for the board: queries over HTTP, subscriptions over graphql-transport-ws.
// The token travels as "Authorization: Bearer ..." over HTTP and in connection_init over the websocket.

const ACCEPT = "application/graphql-response+json, application/json;q=0.9";

export class GraphQLFailure extends Error {
  constructor(message, { unauthorized = false } = {}) {
    super(message);
    this.unauthorized = unauthorized;
  }
}

export class HttpClient {
  constructor(token, { onUnauthorized = () => {} } = {}) {
    this.token = token;
    this.onUnauthorized = onUnauthorized;
  }

  async query(query, variables = {}) {
    let response;
    try {
      response = await fetch("/graphql", {
        method: "POST",
        headers: { "content-type": "application/json", accept: ACCEPT, authorization: `Bearer ${this.token}` },
        body: JSON.stringify({ query, variables }),
      });
    } catch (error) {
      throw new GraphQLFailure(`The API did not answer (${error.message}).`);
    }
    if (response.status === 401) {
      this.onUnauthorized();
      throw new GraphQLFailure("The API refused this token: it is unknown, revoked or mistyped.", { unauthorized: true });
    }
    let body = null;
    try {
      body = await response.json();
    } catch {
      throw new GraphQLFailure(`The API answered ${response.status} ${response.statusText}.`);
    }
    if (response.status === 403) {
      throw new GraphQLFailure(`The API refused: ${body.reason || "this token may not read"}.`);
    }
    if (body.errors && body.errors.length) {
      throw new GraphQLFailure(body.errors.map((e) => e.message).join("; "));
    }
    if (!response.ok || !body.data) {
      throw new GraphQLFailure(body.error || `The API answered ${response.status}.`);
    }
    return body.data;
  }
}

const RETRY_SECONDS = [1, 2, 4, 8, 10];

// One websocket with any number of subscriptions; it reconnects by itself and resubscribes.
export class LiveConnection {
  constructor(token, { onStatus = () => {}, onUnauthorized = () => {}, onReconnected = () => {} } = {}) {
    this.token = token;
    this.onStatus = onStatus;
    this.onUnauthorized = onUnauthorized;
    this.onReconnected = onReconnected;
    this.subscriptions = new Map();
    this.nextId = 1;
    this.socket = null;
    this.acknowledged = false;
    this.everConnected = false;
    this.attempt = 0;
    this.stopped = false;
    this.retryTimer = null;
  }

  start() {
    this.stopped = false;
    this.connect();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    if (this.socket) this.socket.close(1000, "signed out");
    this.socket = null;
    this.subscriptions.clear();
  }

  subscribe(query, variables, onNext, onError = () => {}) {
    const id = String(this.nextId++);
    this.subscriptions.set(id, { query, variables, onNext, onError });
    if (this.acknowledged) this.sendSubscribe(id);
    return () => {
      if (this.subscriptions.delete(id) && this.acknowledged) this.send({ id, type: "complete" });
    };
  }

  send(message) {
    if (this.socket && this.socket.readyState === WebSocket.OPEN) this.socket.send(JSON.stringify(message));
  }

  sendSubscribe(id) {
    const { query, variables } = this.subscriptions.get(id);
    this.send({ id, type: "subscribe", payload: { query, variables } });
  }

  connect() {
    const url = new URL("/graphql", window.location.href);
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    this.onStatus(this.everConnected ? "reconnecting" : "connecting");
    const socket = new WebSocket(url, "graphql-transport-ws");
    this.socket = socket;
    this.acknowledged = false;
    socket.addEventListener("open", () => {
      this.send({ type: "connection_init", payload: { authorization: `Bearer ${this.token}` } });
    });
    socket.addEventListener("message", (event) => this.receive(JSON.parse(event.data)));
    socket.addEventListener("close", (event) => this.closed(socket, event));
  }

  receive(message) {
    switch (message.type) {
      case "connection_ack": {
        this.acknowledged = true;
        this.attempt = 0;
        const again = this.everConnected;
        this.everConnected = true;
        for (const id of this.subscriptions.keys()) this.sendSubscribe(id);
        this.onStatus("live");
        if (again) this.onReconnected();
        break;
      }
      case "next": {
        const subscription = this.subscriptions.get(message.id);
        if (!subscription) break;
        if (message.payload.errors) subscription.onError(message.payload.errors.map((e) => e.message).join("; "));
        else subscription.onNext(message.payload.data);
        break;
      }
      case "error": {
        const subscription = this.subscriptions.get(message.id);
        if (subscription) subscription.onError(message.payload.map((e) => e.message).join("; "));
        break;
      }
      case "ping":
        this.send({ type: "pong" });
        break;
      default:
        break;
    }
  }

  closed(socket, event) {
    if (socket !== this.socket) return;
    this.acknowledged = false;
    if (this.stopped) return;
    if (event.code === 4401) {
      this.onStatus("refused");
      this.onUnauthorized();
      return;
    }
    if (event.code === 4403) {
      this.onStatus("forbidden");
      return;
    }
    const wait = RETRY_SECONDS[Math.min(this.attempt, RETRY_SECONDS.length - 1)];
    this.attempt += 1;
    this.onStatus("reconnecting", wait);
    this.retryTimer = setTimeout(() => this.connect(), wait * 1000);
  }
}
