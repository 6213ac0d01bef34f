// The Carewatch alert board: sign in with a token, then alerts, today's shifts and packages, live.
import { AlertsView, ALERT_FIELDS } from "./alerts.js";
import { clockText, h, setTimeZone, words } from "./format.js";
import { HttpClient, LiveConnection } from "./graphql.js";
import { PackagesView } from "./packages.js";
import { SHIFT_UPDATES, ShiftsView } from "./shifts.js";

const TOKEN_KEY = "carewatch.token";
const REASON_KEY = "carewatch.signedOutBecause";
const CLOCK_FIELDS = "now speed simulated timeZone todayStartsAt todayEndsAt";
const START = `query Board { me { role commissionerId providerId mayActOnAlerts }
  clock { ${CLOCK_FIELDS} } alertKinds { kind severity } }`;
const CLOCK = `query Clock { clock { ${CLOCK_FIELDS} } }`;
const ALERTS = `subscription Alerts { alerts { ${ALERT_FIELDS} } }`;
const CLOCK_REFRESH_MS = 30000;
const PACKAGE_REFRESH_MS = 30000;

const $ = (id) => document.getElementById(id);

// Screen reader announcements: messages close together are read as one.
const pending = { polite: [], assertive: [] };
function announce(text, politeness = "polite") {
  const queue = pending[politeness];
  queue.push(text);
  if (queue.length > 1) return;
  setTimeout(() => {
    const region = $(politeness === "assertive" ? "announce-critical" : "announce-polite");
    region.textContent = queue.splice(0).join(" ");
  }, 200);
}

function signOut(reason) {
  sessionStorage.removeItem(TOKEN_KEY);
  if (reason) sessionStorage.setItem(REASON_KEY, reason);
  window.location.reload();
}

class ServerClock {
  constructor(clock) { this.set(clock); }

  set(clock) {
    this.clock = clock;
    this.at = Date.parse(clock.now);
    this.readAt = performance.now();
    setTimeZone(clock.timeZone);
  }

  now() { return this.at + (performance.now() - this.readAt) * this.clock.speed; }

  text() {
    const c = this.clock;
    const kind = !c.simulated ? "Server time" : c.speed === 0 ? "Simulated time (fixed)" : `Simulated time (×${c.speed})`;
    return `${kind}: ${clockText(new Date(this.now()))}`;
  }
}

class Session {
  constructor(token, start) {
    this.token = token;
    this.client = new HttpClient(token, { onUnauthorized: () => signOut("The API refused the token: sign in again.") });
    this.me = start.me;
    this.clock = new ServerClock(start.clock);
    this.alerts = new AlertsView({ client: this.client, announce, me: this.me });
    this.alerts.setKinds(start.alertKinds);
    this.shifts = new ShiftsView({ client: this.client, announce });
    this.packages = new PackagesView({ client: this.client });
    this.liveSince = null;
    this.dayEnd = Date.parse(start.clock.todayEndsAt);
    this.live = new LiveConnection(token, {
      onStatus: (status, wait) => this.status(status, wait),
      onUnauthorized: () => signOut("The API refused the token: sign in again."),
      onReconnected: () => this.reconnected(),
    });
  }

  start() {
    $("sign-in").hidden = true;
    $("board").hidden = false;
    $("sign-out").hidden = false;
    $("clock").hidden = false;
    $("sign-out").addEventListener("click", () => signOut(""));
    const scope = this.me.commissionerId || this.me.providerId;
    $("who").hidden = false;
    $("who").textContent = `Signed in: ${words(this.me.role)}${scope ? ` for ${scope}` : ""}`;
    this.live.subscribe(ALERTS, {}, (data) => this.alerts.receive(data.alerts),
      (message) => { $("alert-error").textContent = `Live alerts failed: ${message}`; });
    this.watchShifts(this.clock.clock);
    this.live.start();
    this.alerts.load();
    this.packages.load();
    this.tick();
    setInterval(() => this.tick(), 1000);
    setInterval(() => this.refreshClock(), CLOCK_REFRESH_MS);
    setInterval(() => { if (!$("view-packages").hidden) this.packages.load(); }, PACKAGE_REFRESH_MS);
  }

  watchShifts(clock) {
    if (this.stopShifts) this.stopShifts();
    const day = { start: clock.todayStartsAt, end: clock.todayEndsAt };
    this.dayEnd = Date.parse(day.end);
    this.stopShifts = this.live.subscribe(SHIFT_UPDATES, { filter: { from: day.start, to: day.end } },
      (data) => this.shifts.receive(data.shiftUpdates),
      (message) => { $("shift-error").textContent = `Live shifts failed: ${message}`; });
    this.shifts.load(day);
  }

  async refreshClock() {
    try {
      const data = await this.client.query(CLOCK);
      this.clock.set(data.clock);
      if (Date.parse(data.clock.todayEndsAt) !== this.dayEnd) this.watchShifts(data.clock);
    } catch {
      // the connection status already says when the API is away
    }
  }

  tick() {
    $("clock").textContent = this.clock.text();
    if (this.connected) this.liveSince = this.clock.now();
    if (this.clock.now() >= this.dayEnd && !this.rolling) {
      this.rolling = true;  // a new day (fast on a simulated clock): today's shifts are another list
      this.refreshClock().finally(() => { this.rolling = false; });
    }
  }

  status(status, wait) {
    this.connected = status === "live";
    const element = $("connection");
    element.hidden = false;
    element.className = `connection ${status}`;
    element.textContent = {
      connecting: "Connecting…",
      live: "Live",
      reconnecting: wait ? `Connection lost: retrying in ${wait} s` : "Reconnecting…",
      refused: "Token refused",
      forbidden: "This token may not read",
    }[status] || status;
  }

  // Back after a drop: fetch what changed meanwhile (with a margin for clock drift).
  reconnected() {
    const margin = Math.max(5000, 5000 * this.clock.clock.speed);
    const since = new Date((this.liveSince ?? this.clock.now()) - margin).toISOString();
    this.alerts.catchUp(since);
    this.shifts.load({ start: this.clock.clock.todayStartsAt, end: this.clock.clock.todayEndsAt });
    this.refreshClock();
  }
}

function setUpTabs() {
  const tabs = [...document.querySelectorAll('[role="tab"]')];
  const choose = (tab, focus = true) => {
    for (const other of tabs) {
      const selected = other === tab;
      other.setAttribute("aria-selected", String(selected));
      other.tabIndex = selected ? 0 : -1;
      $(other.getAttribute("aria-controls")).hidden = !selected;
    }
    if (focus) tab.focus();
    tab.dispatchEvent(new CustomEvent("tabshown", { bubbles: true }));
  };
  tabs.forEach((tab, index) => {
    tab.addEventListener("click", () => choose(tab));
    tab.addEventListener("keydown", (event) => {
      const next = { ArrowRight: index + 1, ArrowLeft: index - 1, Home: 0, End: tabs.length - 1 }[event.key];
      if (next === undefined) return;
      event.preventDefault();
      choose(tabs[(next + tabs.length) % tabs.length]);
    });
  });
}

async function signIn(token) {
  const client = new HttpClient(token);
  const start = await client.query(START);
  sessionStorage.setItem(TOKEN_KEY, token);
  const session = new Session(token, start);
  document.addEventListener("tabshown", (event) => {
    if (event.target.id === "tab-packages") session.packages.load();
  });
  session.start();
  return session;
}

function showSignInError(message) {
  $("sign-in-error").textContent = message;
  $("token").setAttribute("aria-invalid", message ? "true" : "false");
}

async function main() {
  setUpTabs();
  const form = $("sign-in-form");
  const reason = sessionStorage.getItem(REASON_KEY);
  sessionStorage.removeItem(REASON_KEY);
  if (reason) showSignInError(reason);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const token = $("token").value.trim();
    if (!token) {
      showSignInError("Enter a token.");
      $("token").focus();
      return;
    }
    const button = form.querySelector("button");
    button.disabled = true;
    try {
      await signIn(token);
      $("token").value = "";
      $("main").focus();
    } catch (failure) {
      showSignInError(failure.unauthorized ? "That token was refused: check it, or ask for a new one." : failure.message);
      $("token").focus();
    } finally {
      button.disabled = false;
    }
  });
  const saved = sessionStorage.getItem(TOKEN_KEY);
  if (saved) {
    try {
      await signIn(saved);
    } catch (failure) {
      sessionStorage.removeItem(TOKEN_KEY);
      showSignInError(failure.unauthorized ? "The saved token was refused: sign in again." : failure.message);
    }
  } else {
    $("token").focus();
  }
  document.body.append(h("span", { id: "board-ready", hidden: true }));
}

main();
