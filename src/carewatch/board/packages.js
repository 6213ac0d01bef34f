// Packages for commissioners: the rolling 7 days against plan, and the budget, as a small chart and figures.
import { h, minutes, percent, pounds, svg } from "./format.js";

const LIST = `query Packages($after: String) {
  packages(first: 100, after: $after) {
    edges { node { id commissionerId providerId mechanism plannedMinutesPerWeek
      rolling7Days { plannedMinutes scheduledMinutes actualMinutes payableMinutes spendPence varianceMinutes }
      budget { spentPence forecastSpendPence budgetPence contingencyPence recoverableUnderspendPence } } }
    pageInfo { hasNextPage endCursor } } }`;
const MAX_PAGES = 5;
const LABEL_WIDTH = 78;
const BAR_WIDTH = 200;
const WIDTH = 420;

function deliveryTone(actual, planned) {
  if (!planned) return "ok";
  const share = actual / planned;
  return share >= 0.9 ? "ok" : share >= 0.75 ? "short" : "far-short";
}

function bar(y, label, value, scale, tone, text) {
  const width = scale ? Math.max(0, Math.min(BAR_WIDTH, (BAR_WIDTH * value) / scale)) : 0;
  return [
    svg("text", { x: 0, y: y + 12, class: "chart-label" }, label),
    svg("rect", { x: LABEL_WIDTH, y, width: BAR_WIDTH, height: 16, class: "chart-track" }),
    svg("rect", { x: LABEL_WIDTH, y, width, height: 16, class: `chart-bar ${tone}` }),
    svg("text", { x: LABEL_WIDTH + BAR_WIDTH + 6, y: y + 12, class: "chart-value" }, text),
  ];
}

export function packageChart(pkg, titleId) {
  const d = pkg.rolling7Days;
  const b = pkg.budget;
  const scale = Math.max(d.plannedMinutes, d.scheduledMinutes, d.actualMinutes, 1);
  const tone = deliveryTone(d.actualMinutes, d.plannedMinutes);
  const budgetScale = Math.max(b.budgetPence, b.forecastSpendPence, 1);
  const over = b.forecastSpendPence > b.budgetPence;
  const forecastX = LABEL_WIDTH + (BAR_WIDTH * b.forecastSpendPence) / budgetScale;
  const budgetWidth = (BAR_WIDTH * b.budgetPence) / budgetScale;
  const description = `Last 7 days: ${minutes(d.actualMinutes)} delivered of ${minutes(d.plannedMinutes)} planned `
    + `(${percent(d.actualMinutes, d.plannedMinutes)}). Budget: ${pounds(b.spentPence)} spent of `
    + `${pounds(b.budgetPence)}; forecast ${pounds(b.forecastSpendPence)}${over ? ", over budget" : ""}.`;
  return svg("svg", { viewBox: `0 0 ${WIDTH} 104`, class: "chart", role: "img", "aria-labelledby": titleId },
    svg("title", { id: titleId }, description),
    ...bar(4, "Planned", d.plannedMinutes, scale, "plan", minutes(d.plannedMinutes)),
    ...bar(26, "Delivered", d.actualMinutes, scale, tone,
      `${minutes(d.actualMinutes)} (${percent(d.actualMinutes, d.plannedMinutes)})`),
    svg("text", { x: 0, y: 72, class: "chart-label" }, "Budget"),
    svg("rect", { x: LABEL_WIDTH, y: 60, width: budgetWidth, height: 16, class: "chart-track budget" }),
    svg("rect", { x: LABEL_WIDTH, y: 60, width: (BAR_WIDTH * b.spentPence) / budgetScale, height: 16,
      class: "chart-bar spent" }),
    svg("line", { x1: forecastX, x2: forecastX, y1: 56, y2: 80, class: `chart-forecast${over ? " over" : ""}` }),
    svg("text", { x: LABEL_WIDTH + BAR_WIDTH + 6, y: 72, class: "chart-value" },
      `${percent(b.spentPence, b.budgetPence)} spent`),
    svg("text", { x: Math.min(forecastX, LABEL_WIDTH + BAR_WIDTH - 4), y: 96,
      class: `chart-note${over ? " over" : ""}`, "text-anchor": "middle" }, over ? "forecast: over" : "forecast"));
}

export class PackagesView {
  constructor({ client }) {
    this.client = client;
    this.list = document.getElementById("package-list");
    this.error = document.getElementById("package-error");
    this.summary = document.getElementById("package-summary");
  }

  async load() {
    const packages = [];
    let after = null;
    try {
      for (let page = 0; page < MAX_PAGES; page += 1) {
        const data = await this.client.query(LIST, { after });
        packages.push(...data.packages.edges.map((e) => e.node));
        if (!data.packages.pageInfo.hasNextPage) break;
        after = data.packages.pageInfo.endCursor;
      }
      this.error.textContent = "";
    } catch (failure) {
      this.error.textContent = `Could not load packages: ${failure.message}`;
      return;
    }
    this.render(packages);
  }

  render(packages) {
    const short = packages.filter((p) => deliveryTone(p.rolling7Days.actualMinutes, p.rolling7Days.plannedMinutes) !== "ok");
    const over = packages.filter((p) => p.budget.forecastSpendPence > p.budget.budgetPence);
    this.summary.textContent = `${packages.length} package${packages.length === 1 ? "" : "s"}; `
      + `${short.length} delivered under 90% of plan in the last 7 days; ${over.length} forecast over budget.`;
    if (!packages.length) {
      this.list.replaceChildren(h("p", { class: "empty" }, "No packages for this token."));
      return;
    }
    this.list.replaceChildren(...packages.map((pkg) => this.card(pkg)));
  }

  card(pkg) {
    const d = pkg.rolling7Days;
    const b = pkg.budget;
    const slug = pkg.id.replace(/[^A-Za-z0-9_-]/g, "_");
    const figures = [
      ["Planned, 7 days", minutes(d.plannedMinutes)],
      ["Delivered", minutes(d.actualMinutes)],
      ["Against plan", minutes(d.varianceMinutes)],
      ["Spend, 7 days", pounds(d.spendPence)],
      ["Budget spent", `${pounds(b.spentPence)} of ${pounds(b.budgetPence)}`],
      ["Forecast", pounds(b.forecastSpendPence)],
      ["Recoverable", pounds(b.recoverableUnderspendPence)],
    ];
    return h("article", { class: "package", "aria-labelledby": `pkg-${slug}`, "data-package": pkg.id },
      h("h3", { id: `pkg-${slug}` }, pkg.id, h("span", { class: "subtle" }, ` ${pkg.providerId} · ${pkg.mechanism}`)),
      packageChart(pkg, `pkg-${slug}-chart`),
      h("dl", { class: "figures" }, ...figures.flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v)])));
  }
}
