// GraphiQL for Carewatch, from the vendored React and GraphiQL builds (no CDN).
// The token goes in the Headers tab; subscriptions carry it in graphql-transport-ws's
// connection_init payload, since a browser cannot set headers on a websocket.
(function () {
  "use strict";
  const url = new URL("/graphql", window.location.href).toString();
  const subscriptionUrl = url.replace(/^http/, "ws");
  const TEMPLATE = JSON.stringify({ Authorization: "Bearer <paste a token from: carewatch token create>" }, null, 2);
  const EXAMPLE = [
    "# Carewatch GraphQL. Your token goes in the Headers tab below;",
    "# then re-fetch the schema (the circular arrows, or Shift+Ctrl+R).",
    "# Run with Ctrl+Enter.",
    "",
    "{",
    "  clock { now speed simulated }",
    "  packages(first: 5) {",
    "    edges { node { id plannedMinutesPerWeek",
    "      rolling7Days { plannedMinutes actualMinutes spendPence }",
    "      budget { spentPence forecastSpendPence budgetPence } } }",
    "  }",
    "}",
    "",
  ].join("\n");

  const fetchers = new Map();
  function fetcherFor(authorization) {
    if (!fetchers.has(authorization)) {
      fetchers.set(authorization, GraphiQL.createFetcher({
        url,
        subscriptionUrl,
        wsConnectionParams: { authorization },
      }));
    }
    return fetchers.get(authorization);
  }

  function fetcher(params, options) {
    const headers = (options && options.headers) || {};
    const authorization = headers.Authorization || headers.authorization || "";
    return fetcherFor(authorization)(params, options);
  }

  const root = ReactDOM.createRoot(document.getElementById("graphiql"));
  root.render(React.createElement(GraphiQL, {
    fetcher,
    defaultQuery: EXAMPLE,
    defaultHeaders: TEMPLATE,
    defaultEditorToolsVisibility: "headers",
    isHeadersEditorEnabled: true,
    shouldPersistHeaders: false,
    inputValueDeprecation: true,
  }));
})();
