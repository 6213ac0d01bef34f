// The alerts view: the list the token may see, live, filtered, with acknowledge and resolve.
import { dateTime, h, words } from "./format.js";

export const ALERT_FIELDS = `id kind severity status subjectType subjectId raisedAt resolvedAt message
  packageId shiftId carerId providerId commissionerId causedByLateData
  history { status changedAt changedBy note }`;

const LIST = `query Alerts($filter: AlertFilter, $first: Int) {
  alerts(filter: $filter, first: $first) { edges { node { ${ALERT_FIELDS} } } } }`;
const ACKNOWLEDGE = `mutation Acknowledge($id: ID!, $note: String) {
  acknowledgeAlert(id: $id, note: $note) { ${ALERT_FIELDS} } }`;
const RESOLVE = `mutation Resolve($id: ID!, $note: String!) {
  resolveAlert(id: $id, note: $note) { ${ALERT_FIELDS} } }`;

const STATUS_GROUPS = {
  active: ["open", "acknowledged"],
  open: ["open"],
  acknowledged: ["acknowledged"],
  closed: ["resolved", "auto_resolved"],
  all: null,
};
const SEVERITY_ORDER = { critical: 0, warning: 1, info: 2 };
const SEVERITY_MARK = { critical: "▲", warning: "●", info: "○" };
const MAX_ROWS = 300;

// Open critical alerts head the list whatever their age; then newest first.
function urgent(alert) {
  return alert.severity === "critical" && alert.status === "open" ? 1 : 0;
}

function lastChange(alert) {
  const history = alert.history || [];
  return Date.parse(history.length ? history[history.length - 1].changedAt : alert.raisedAt);
}

export class AlertsView {
  constructor({ client, announce, me }) {
    this.client = client;
    this.announce = announce;
    this.me = me;
    this.alerts = new Map();
    this.selected = null;
    this.fresh = new Set();
    this.form = document.getElementById("alert-filters");
    this.kind = document.getElementById("filter-kind");
    this.severity = document.getElementById("filter-severity");
    this.status = document.getElementById("filter-status");
    this.provider = document.getElementById("filter-provider");
    this.body = document.getElementById("alert-rows");
    this.summary = document.getElementById("alert-summary");
    this.error = document.getElementById("alert-error");
    this.detail = document.getElementById("alert-detail");
    this.form.addEventListener("change", () => this.filtersChanged());
    this.form.addEventListener("submit", (event) => event.preventDefault());
  }

  setKinds(kinds) {
    this.kind.replaceChildren(h("option", { value: "" }, "Any kind"),
      ...kinds.map((k) => h("option", { value: k.kind }, words(k.kind))));
  }

  filter() {
    return {
      kind: this.kind.value || null,
      severity: this.severity.value || null,
      statuses: STATUS_GROUPS[this.status.value] ?? null,
      provider: this.provider.value || null,
    };
  }

  serverFilter(extra = {}) {
    const f = this.filter();
    return {
      ...(f.kind ? { kinds: [f.kind] } : {}),
      ...(f.severity ? { severities: [f.severity] } : {}),
      ...(f.statuses ? { statuses: f.statuses } : {}),
      ...(f.provider ? { providerId: f.provider } : {}),
      ...extra,
    };
  }

  async load(extra = {}, first = 200) {
    try {
      const data = await this.client.query(LIST, { filter: this.serverFilter(extra), first });
      for (const edge of data.alerts.edges) this.merge(edge.node);
      this.error.textContent = "";
    } catch (failure) {
      this.error.textContent = `Could not load alerts: ${failure.message}`;
    }
    this.render();
  }

  // After a reconnect: whatever was raised or changed since the last time we were live.
  async catchUp(since) {
    try {
      const data = await this.client.query(LIST, { filter: { since }, first: 500 });
      const before = new Set(this.alerts.keys());
      const critical = [];
      for (const edge of data.alerts.edges) {
        const alert = edge.node;
        if (!before.has(alert.id)) {
          this.fresh.add(alert.id);
          if (alert.severity === "critical" && alert.status === "open") critical.push(alert);
        }
        this.merge(alert);
      }
      this.render();
      const missed = data.alerts.edges.length;
      if (missed) this.announce(`${missed} alert${missed === 1 ? "" : "s"} changed while the board was offline.`);
      for (const alert of critical) this.announce(`Critical alert: ${words(alert.kind)}. ${alert.message}`, "assertive");
    } catch (failure) {
      this.error.textContent = `Could not catch up: ${failure.message}`;
    }
  }

  filtersChanged() {
    this.render();
    this.load();
  }

  merge(alert) {
    const known = this.alerts.get(alert.id);
    if (known && lastChange(known) > lastChange(alert)) return false;
    this.alerts.set(alert.id, alert);
    return true;
  }

  // An alert from the subscription: new or changed.
  receive(alert) {
    const isNew = !this.alerts.has(alert.id);
    if (!this.merge(alert)) return;
    if (isNew) {
      this.fresh.add(alert.id);
      setTimeout(() => { this.fresh.delete(alert.id); this.render(); }, 6000);
      if (alert.severity === "critical" && alert.status === "open") {
        this.announce(`Critical alert: ${words(alert.kind)}. ${alert.message}`, "assertive");
      } else {
        this.announce(`New ${alert.severity} alert: ${words(alert.kind)}.`);
      }
    }
    this.render();
  }

  visible() {
    const f = this.filter();
    return [...this.alerts.values()]
      .filter((a) => (!f.kind || a.kind === f.kind) && (!f.severity || a.severity === f.severity)
        && (!f.statuses || f.statuses.includes(a.status)) && (!f.provider || a.providerId === f.provider))
      .sort((a, b) => urgent(b) - urgent(a) || Number(b.id) - Number(a.id));
  }

  renderProviders() {
    const current = this.provider.value;
    const ids = new Set([...this.alerts.values()].map((a) => a.providerId).filter(Boolean));
    if (this.me.providerId) ids.add(this.me.providerId);
    const sorted = [...ids].sort();
    const have = [...this.provider.options].map((o) => o.value).slice(1);
    if (have.join() === sorted.join()) return;
    this.provider.replaceChildren(h("option", { value: "" }, "Any provider"),
      ...sorted.map((id) => h("option", { value: id }, id)));
    this.provider.value = sorted.includes(current) ? current : "";
  }

  render() {
    this.renderProviders();
    const shown = this.visible();
    const focusedId = document.activeElement && document.activeElement.dataset
      ? document.activeElement.dataset.alertId : undefined;
    const openCritical = shown.filter((a) => a.severity === "critical" && a.status === "open").length;
    this.summary.replaceChildren(
      `${shown.length} alert${shown.length === 1 ? "" : "s"} shown`,
      openCritical ? h("strong", { class: "critical-count" }, ` · ${openCritical} critical open`) : "",
      shown.length > MAX_ROWS ? ` (the newest ${MAX_ROWS} listed)` : "");
    const rows = shown.slice(0, MAX_ROWS).map((alert) => this.row(alert));
    if (!rows.length) {
      rows.push(h("tr", {}, h("td", { colspan: 6, class: "empty" }, "No alerts match these filters.")));
    }
    this.body.replaceChildren(...rows);
    if (focusedId) {
      const again = this.body.querySelector(`button[data-alert-id="${CSS.escape(focusedId)}"]`);
      if (again) again.focus();
    }
    this.renderDetail();
  }

  row(alert) {
    const selected = alert.id === this.selected;
    return h("tr", {
      class: [`severity-${alert.severity}`, `status-${alert.status}`, selected ? "selected" : "",
        this.fresh.has(alert.id) ? "fresh" : ""].join(" "),
      "data-alert-row": alert.id,
    },
      h("td", {}, h("span", { class: `badge severity-${alert.severity}` },
        h("span", { "aria-hidden": "true" }, `${SEVERITY_MARK[alert.severity] || ""} `), words(alert.severity))),
      h("td", { class: "nowrap" }, words(alert.kind),
        this.fresh.has(alert.id) ? h("span", { class: "new-tag" }, "New") : ""),
      h("td", { class: "message" }, h("button", {
        type: "button", class: "link", "data-alert-id": alert.id, "aria-controls": "alert-detail",
        "aria-expanded": selected ? "true" : "false", onclick: () => this.select(alert.id),
      }, alert.message || `${words(alert.kind)} on ${alert.subjectId}`)),
      h("td", { class: "nowrap" }, alert.providerId || "–"),
      h("td", { class: "nowrap" }, h("time", { datetime: alert.raisedAt }, dateTime(alert.raisedAt))),
      h("td", {}, h("span", { class: `status status-${alert.status}` }, words(alert.status))),
    );
  }

  select(id) {
    this.selected = id;
    this.render();
    const heading = document.getElementById("alert-detail-title");
    if (heading) heading.focus();
  }

  renderDetail() {
    const alert = this.alerts.get(this.selected);
    // Rebuilt only when the chosen alert changes, so a note being typed keeps its focus.
    const key = alert ? `${alert.id}@${lastChange(alert)}:${alert.status}` : "none";
    if (key === this.detailKey) return;
    this.detailKey = key;
    if (!alert) {
      this.detail.replaceChildren(h("h3", { id: "alert-detail-title", tabindex: "-1" }, "Alert details"),
        h("p", { class: "hint" }, "Choose an alert in the list to see its history, acknowledge or resolve it."));
      return;
    }
    const done = alert.status === "resolved" || alert.status === "auto_resolved";
    const facts = [["Severity", words(alert.severity)], ["Status", words(alert.status)],
      ["Subject", `${words(alert.subjectType)} ${alert.subjectId}`], ["Shift", alert.shiftId],
      ["Package", alert.packageId], ["Carer", alert.carerId], ["Provider", alert.providerId],
      ["Commissioner", alert.commissionerId], ["Raised", dateTime(alert.raisedAt)],
      ["Resolved", dateTime(alert.resolvedAt)], ["Late data", alert.causedByLateData ? "yes: the events came late" : null]];
    const previousNote = this.detail.querySelector("#alert-note");
    const keepNote = previousNote && previousNote.dataset.alertId === alert.id ? previousNote.value : "";
    const note = h("textarea", { id: "alert-note", rows: 3, "data-alert-id": alert.id,
      "aria-describedby": "alert-note-help" });
    note.value = keepNote;
    const feedback = h("p", { id: "alert-action-result", role: "status", class: "feedback" });
    this.detail.replaceChildren(
      h("h3", { id: "alert-detail-title", tabindex: "-1", class: `severity-${alert.severity}` },
        `${words(alert.kind)}: ${alert.subjectId}`),
      h("p", { class: "detail-message" }, alert.message),
      h("dl", { class: "facts" }, ...facts.filter(([, v]) => v).flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v)])),
      h("form", { class: "act", onsubmit: (event) => event.preventDefault() },
        h("label", { for: "alert-note" }, "Note"),
        note,
        h("p", { id: "alert-note-help", class: "hint" }, this.me.mayActOnAlerts
          ? "Say what was done. Resolving needs a note."
          : "Only safeguarding and admin tokens may acknowledge or resolve; the API will refuse this token."),
        h("div", { class: "buttons" },
          h("button", { type: "button", id: "acknowledge", disabled: alert.status !== "open",
            onclick: () => this.act(alert.id, "acknowledge") }, "Acknowledge"),
          h("button", { type: "button", id: "resolve", disabled: done,
            onclick: () => this.act(alert.id, "resolve") }, "Resolve")),
        feedback),
      h("h4", {}, "History"),
      h("ol", { class: "history" }, ...(alert.history || []).map((change) => h("li", {},
        h("time", { datetime: change.changedAt }, dateTime(change.changedAt)), " ",
        h("strong", {}, words(change.status)), ` by ${change.changedBy}`,
        change.note ? h("span", { class: "note" }, `: ${change.note}`) : ""))));
  }

  async act(id, action) {
    const note = document.getElementById("alert-note").value.trim();
    const feedback = () => document.getElementById("alert-action-result");
    feedback().textContent = action === "acknowledge" ? "Acknowledging…" : "Resolving…";
    try {
      const data = action === "acknowledge"
        ? await this.client.query(ACKNOWLEDGE, { id, note: note || null })
        : await this.client.query(RESOLVE, { id, note });
      const changed = action === "acknowledge" ? data.acknowledgeAlert : data.resolveAlert;
      this.merge(changed);
      document.getElementById("alert-note").value = "";
      this.render();
      feedback().textContent = `Alert ${words(changed.status).toLowerCase()}.`;
      feedback().classList.remove("error");
    } catch (failure) {
      feedback().textContent = `The API refused: ${failure.message}`;
      feedback().classList.add("error");
    }
  }
}
