// Today's shifts and their status, live through the shiftUpdates subscription (provider coordinators).
import { dayText, h, minutes, time, words } from "./format.js";

export const SHIFT_FIELDS = `id packageId providerId startsAt endsAt serviceType carersRequired carerIds status
  actualMinutes attendance { carerId clockInAt clockOutAt verified }`;
const LIST = `query Shifts($filter: ShiftFilter, $after: String) {
  shifts(filter: $filter, first: 500, after: $after) {
    edges { node { ${SHIFT_FIELDS} } } pageInfo { hasNextPage endCursor } } }`;
export const SHIFT_UPDATES = `subscription ShiftUpdates($filter: ShiftFilter) { shiftUpdates(filter: $filter) { ${SHIFT_FIELDS} } }`;

const STATUSES = ["LATE", "MISSED", "IN_PROGRESS", "SCHEDULED", "COMPLETED", "CANCELLED"];
const MAX_PAGES = 10;

export class ShiftsView {
  constructor({ client, announce }) {
    this.client = client;
    this.announce = announce;
    this.shifts = new Map();
    this.day = null;
    this.body = document.getElementById("shift-rows");
    this.summary = document.getElementById("shift-summary");
    this.title = document.getElementById("shifts-title");
    this.error = document.getElementById("shift-error");
  }

  window() {
    return this.day ? { from: this.day.start, to: this.day.end } : null;
  }

  async load(day) {
    this.day = day;
    this.shifts.clear();
    let after = null;
    try {
      for (let page = 0; page < MAX_PAGES; page += 1) {
        const data = await this.client.query(LIST, { filter: this.window(), after });
        for (const edge of data.shifts.edges) this.shifts.set(edge.node.id, edge.node);
        if (!data.shifts.pageInfo.hasNextPage) break;
        after = data.shifts.pageInfo.endCursor;
      }
      this.error.textContent = "";
    } catch (failure) {
      this.error.textContent = `Could not load today's shifts: ${failure.message}`;
    }
    this.render();
  }

  receive(shift) {
    const starts = Date.parse(shift.startsAt);
    if (this.day && (starts < Date.parse(this.day.start) || starts >= Date.parse(this.day.end))) return;
    const before = this.shifts.get(shift.id);
    this.shifts.set(shift.id, shift);
    if (before && before.status !== shift.status && (shift.status === "LATE" || shift.status === "MISSED")) {
      this.announce(`Shift ${shift.id} is now ${words(shift.status).toLowerCase()}.`);
    }
    this.render();
  }

  render() {
    if (this.day) this.title.textContent = `Today's shifts: ${dayText(this.day.start)}`;
    const shifts = [...this.shifts.values()].sort((a, b) => Date.parse(a.startsAt) - Date.parse(b.startsAt)
      || a.id.localeCompare(b.id));
    const counts = new Map(STATUSES.map((s) => [s, 0]));
    for (const shift of shifts) counts.set(shift.status, (counts.get(shift.status) || 0) + 1);
    this.summary.replaceChildren(...STATUSES.map((status) => h("li", { class: `chip shift-${status}${counts.get(status) ? "" : " none"}` },
      h("span", { class: "count" }, String(counts.get(status))), ` ${words(status)}`)));
    const rows = shifts.map((shift) => h("tr", { class: `shift-${shift.status}`, "data-shift-row": shift.id },
      h("td", {}, `${time(shift.startsAt)}–${time(shift.endsAt)}`),
      h("td", {}, shift.id),
      h("td", {}, shift.packageId),
      h("td", {}, shift.providerId),
      h("td", {}, `${shift.attendance.length} of ${shift.carersRequired}`,
        shift.carerIds.length ? h("span", { class: "subtle" }, ` (${shift.carerIds.join(", ")})`) : ""),
      h("td", {}, h("span", { class: `status shift-${shift.status}` }, words(shift.status))),
      h("td", { class: "number" }, shift.actualMinutes ? minutes(shift.actualMinutes) : "–")));
    if (!rows.length) rows.push(h("tr", {}, h("td", { colspan: 7, class: "empty" }, "No shifts today.")));
    this.body.replaceChildren(...rows);
  }
}
