// The graphql-http server audits (GraphQL over HTTP spec) against a running Carewatch API.
// Usage: CAREWATCH_AUDIT_URL=http://127.0.0.1:8000/graphql CAREWATCH_AUDIT_TOKEN=cw_... node audit.mjs
// Prints one JSON array of {id, name, status, reason}; every request carries the bearer token.
import { serverAudits } from 'graphql-http';

const url = process.env.CAREWATCH_AUDIT_URL;
const token = process.env.CAREWATCH_AUDIT_TOKEN;
if (!url || !token) {
  console.error('audit: set CAREWATCH_AUDIT_URL and CAREWATCH_AUDIT_TOKEN');
  process.exit(2);
}

function fetchWithToken(input, init = {}) {
  const headers = new Headers(init.headers);
  headers.set('authorization', `Bearer ${token}`);
  return fetch(input, { ...init, headers });
}

const results = [];
for (const audit of serverAudits({ url, fetchFn: fetchWithToken })) {
  const result = await audit.fn();
  results.push({ id: result.id, name: result.name, status: result.status, reason: result.reason ?? null });
}
console.log(JSON.stringify(results, null, 1));
