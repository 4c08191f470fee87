// A tiny client of northd, typed by what openapi-typescript generates from
// docs/openapi.yaml: it proves the document is usable as it stands. If the
// document renames a field or drops a status, this no longer type-checks.
import type { components, paths } from "northd-api";

type LoginBody = paths["/north/login"]["post"]["requestBody"]["content"]["application/json"];
type LoginOK = paths["/north/login"]["post"]["responses"][200]["content"]["application/json; charset=utf-8"];
type LoginRefused = paths["/north/login"]["post"]["responses"][401]["content"]["application/json; charset=utf-8"];
type VerifyOK = paths["/north/verify"]["get"]["responses"][200]["content"]["application/json; charset=utf-8"];
type PublishBody = paths["/north/events"]["post"]["requestBody"]["content"]["application/json"];
type Published = paths["/north/events"]["post"]["responses"][202]["content"]["application/json; charset=utf-8"];
type LongPoll = paths["/north/events"]["get"]["responses"][200]["content"]["application/json; charset=utf-8"];
type Event = components["schemas"]["Event"];

const subsystem = "http://127.0.0.1:8000";
const adminListener = "http://127.0.0.1:9100";

// login answers the token, or throws the refusal's sentence.
export async function login(body: LoginBody): Promise<string> {
  const res = await fetch(subsystem + "/north/login", { method: "POST", body: JSON.stringify(body) });
  if (res.status !== 200) {
    const refused = (await res.json()) as LoginRefused;
    throw new Error(`login refused (${refused.code}): ${refused.description}`);
  }
  const ok = (await res.json()) as LoginOK;
  return ok.token;
}

// verify answers whose the token is and its seconds left.
export async function verify(token: string): Promise<{ username: string; ip: string; expiresIn: number }> {
  const res = await fetch(subsystem + "/north/verify", { headers: { Authorization: "Bearer " + token } });
  if (res.status !== 200) {
    throw new Error(`verify: ${res.status}`);
  }
  const v = (await res.json()) as VerifyOK;
  return { username: v.username, ip: v.ip, expiresIn: v.expires_in };
}

// publish sends one event (or a batch) on the admin listener and answers
// the ids given to it.
export async function publish(drafts: PublishBody, idempotencyKey: string, adminToken?: string): Promise<string[]> {
  const headers: Record<string, string> = { "Idempotency-Key": idempotencyKey };
  if (adminToken !== undefined) {
    headers.Authorization = "Bearer " + adminToken;
  }
  const res = await fetch(adminListener + "/north/events", { method: "POST", headers, body: JSON.stringify(drafts) });
  if (res.status !== 202) {
    throw new Error(`publish: ${res.status}`);
  }
  const p = (await res.json()) as Published;
  return "events" in p ? p.events.map((e) => e.id) : [p.id];
}

// poll waits up to 30 s for the events after `after`.
export async function poll(token: string, after?: string): Promise<{ events: Event[]; next: string }> {
  const q = after === undefined ? "?wait=30s" : "?wait=30s&after=" + encodeURIComponent(after);
  const res = await fetch(subsystem + "/north/events" + q, { headers: { Authorization: "Bearer " + token } });
  if (res.status !== 200) {
    throw new Error(`poll: ${res.status}`);
  }
  const lp = (await res.json()) as LongPoll;
  return { events: lp.events, next: lp.next };
}

export async function example(): Promise<void> {
  const token = await login({ username: "north-1", password: "secret", ip: "127.0.0.1" });
  const who = await verify(token);
  const ids = await publish({ type: "alarm.raised", data: { level: "major" }, to: { ip: who.ip } }, "example-1");
  const { events } = await poll(token);
  console.log(who.username, ids, events.map((e) => `${e.type} ${e.id}`));
}
