/** The demo's one HTML page. Pure functions from data to HTML; every value goes through `escapeHtml`. */
import type { PortalLogoutOutcome, PortalLogoutStats, PortalSessionStatus } from '../../src';

export interface PortalSessionRow {
  idHash: string;
  businessEntityId?: string;
  /** Opened in this sign-in (this browser), or by another sign-in of the same customer (another device). */
  thisDevice: boolean;
  /** Status as Chargebee reports it now, or why it could not be read. */
  status?: string;
  error?: string;
  createdAt?: number;
  /** When it is logged out by itself (option `expiry`), unless something ends it first. */
  endsBySelf?: ScheduledEnd;
}

/** A scheduled logout: when (ms since the epoch), and why. */
export interface ScheduledEnd {
  at: number;
  reason: 'idle' | 'portal_max_age';
}

/** What the page shows of a logout after the session is gone: hashes and statuses, no raw ID. */
export interface LogoutSummary {
  result: PortalLogoutOutcome['result'];
  at: number;
  /** A sign-out of all devices. */
  everywhere: boolean;
  /** Why the registry of the customer's other portal sessions could not be read, at a sign-out everywhere. */
  error?: string;
  portalSessions: Array<{
    idHash: string;
    status: PortalSessionStatus;
    businessEntityId?: string;
    detail?: string;
    /** Opened by another sign-in (another device), ended by a sign-out of all devices. */
    elsewhere?: boolean;
  }>;
}

export interface HomePage {
  user?: { email: string; customerId: string };
  remembered: PortalSessionRow[];
  /** Why the customer's portal sessions on other devices could not be listed. */
  registryError?: string;
  notice?: string;
  lastLogout?: LogoutSummary;
  chargebee: { emulatorUrl?: string; description: string };
  /** `portalLogout.stats()`, shown at the bottom. */
  stats?: PortalLogoutStats;
  /** Set when portal sessions end by themselves (`PORTAL_MAX_AGE_MS`, `PORTAL_IDLE_MS`). */
  expiry?: { maxAgeMs?: number; idleMs?: number };
}

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

export function escapeHtml(value: unknown): string {
  return String(value).replace(/[&<>"']/g, (c) => ESCAPES[c]);
}

// Keyed by string: a status or result this page does not know yet is shown as it is.
const STATUS_WORDS: Record<string, string> = {
  logged_out: 'logged out',
  already_logged_out: 'already out (ended before this sign-out)',
  not_found: 'already out (Chargebee does not know it)',
  invalid_id: 'skipped (not a portal-session ID)',
  deferred: 'deferred: Chargebee did not answer in time; retried in the background',
  failed: 'failed: may still be open',
};

const RESULT_WORDS: Record<string, string> = {
  ended: 'every portal session of that sign-in is over.',
  nothing_remembered: 'no portal session had been opened, so Chargebee was not called.',
  deferred: 'Chargebee did not answer in time; the logout is being retried in the background.',
  failed: 'at least one portal session could not be logged out.',
};

function resultWords(summary: LogoutSummary): string {
  if (summary.everywhere && summary.result === 'ended')
    return 'every portal session of yours, on every device, is over.';
  if (summary.everywhere && summary.result === 'nothing_remembered')
    return 'no device had a portal session open, so Chargebee was not called.';
  return RESULT_WORDS[summary.result] ?? summary.result;
}

const STYLE = `body{font:16px/1.5 system-ui,sans-serif;margin:2rem auto;max-width:46rem;padding:0 1rem;color:#1d1d1f}
h1{font-size:1.5rem;margin-bottom:.25rem}h2{font-size:1.15rem;margin-top:2rem}.muted{color:#666}
table{border-collapse:collapse;width:100%;margin:.5rem 0}th,td{border-bottom:1px solid #ddd;padding:.35rem .5rem;text-align:left}
code{font-size:.9em}form{display:inline-block;margin:.25rem .5rem .25rem 0}input[name=email]{font:inherit;padding:.3rem;width:18rem}
button{font:inherit;padding:.35rem .9rem;cursor:pointer}.notice{background:#fff6d6;border:1px solid #e6c200;padding:.5rem .75rem}
.outcome{border:1px solid #bbb;padding:0 1rem .5rem;margin:1rem 0}.outcome h2{margin-top:.75rem}.ok{color:#176b1f}.bad{color:#a4161a}`;

function time(unixSeconds: number | undefined): string {
  return unixSeconds === undefined ? '' : escapeHtml(new Date(unixSeconds * 1000).toISOString().slice(11, 19));
}

const where = (thisDevice: boolean | undefined): string => (thisDevice ? 'this device' : 'another device');

const END_REASONS: Record<ScheduledEnd['reason'], string> = { idle: 'idle', portal_max_age: 'maximum age' };

function endsCell(r: PortalSessionRow): string {
  if (!r.endsBySelf) return '<td class="ends"></td>';
  const at = new Date(r.endsBySelf.at).toISOString().slice(11, 19);
  return `<td class="ends">${escapeHtml(at)} <span class="muted">(${END_REASONS[r.endsBySelf.reason]})</span></td>`;
}

function rememberedTable(rows: PortalSessionRow[], expiry: boolean): string {
  if (rows.length === 0) return '<p class="muted">None yet. Open the billing portal to create one.</p>';
  const body = rows.map(
    (r) =>
      `<tr><td><code>${escapeHtml(r.idHash)}</code></td><td>${escapeHtml(r.businessEntityId ?? '')}</td>` +
      `<td>${r.status !== undefined ? `<strong>${escapeHtml(r.status)}</strong>` : `<span class="bad">unknown: ${escapeHtml(r.error ?? '')}</span>`}</td>` +
      `<td>${time(r.createdAt)}</td><td class="device">${where(r.thisDevice)}</td>${expiry ? endsCell(r) : ''}</tr>`,
  );
  const endsHead = expiry ? '<th>Ends by itself (UTC)</th>' : '';
  return `<table id="portal-sessions"><thead><tr><th>Portal session (hash)</th><th>Entity</th><th>Status at Chargebee</th><th>Created (UTC)</th><th>Opened on</th>${endsHead}</tr></thead>
<tbody>${body.join('')}</tbody></table>`;
}

function expiryNote(expiry: { maxAgeMs?: number; idleMs?: number }): string {
  const parts: string[] = [];
  if (expiry.maxAgeMs !== undefined) parts.push(`${expiry.maxAgeMs / 1000} s after it was opened (maximum age)`);
  if (expiry.idleMs !== undefined)
    parts.push(
      `after about ${expiry.idleMs / 1000} s without a request of this sign-in (idle: each load of this page counts as one)`,
    );
  return `<p class="muted" id="expiry">A portal session ends by itself ${escapeHtml(parts.join(', or '))}, whichever comes first: watch it on the emulator's page without signing out.</p>`;
}

function outcomeBox(summary: LogoutSummary): string {
  const rows = summary.portalSessions.map((p) => {
    const css = p.status === 'failed' ? 'bad' : 'ok';
    const detail = p.detail ? ` <span class="muted">(${escapeHtml(p.detail)})</span>` : '';
    return `<tr><td><code>${escapeHtml(p.idHash)}</code></td><td>${escapeHtml(p.businessEntityId ?? '')}</td><td class="${css}">${escapeHtml(STATUS_WORDS[p.status] ?? p.status)}${detail}</td><td>${where(!p.elsewhere)}</td></tr>`;
  });
  const table =
    rows.length === 0
      ? ''
      : `<table><thead><tr><th>Portal session (hash)</th><th>Entity</th><th>At sign-out</th><th>Opened on</th></tr></thead><tbody>${rows.join('')}</tbody></table>`;
  const error = summary.error
    ? `<p class="bad">The portal sessions of your other devices could not be listed: ${escapeHtml(summary.error)}</p>`
    : '';
  return `<section class="outcome" id="last-logout"><h2>Last sign-out</h2>
<p>Signed out at ${escapeHtml(new Date(summary.at).toISOString().slice(11, 19))} UTC: ${escapeHtml(resultWords(summary))}</p>${error}${table}</section>`;
}

/** Counts that are not zero, as `name n` pairs; "none" when all are. */
function counts(values: Record<string, number>): string {
  const shown = Object.entries(values).filter(([, n]) => n > 0);
  return shown.length ? shown.map(([k, n]) => `${escapeHtml(k)} <strong>${n}</strong>`).join(', ') : 'none';
}

function statsBox(stats: PortalLogoutStats): string {
  const q = stats.queue;
  const queue = q
    ? `${q.depth ?? 'unknown'} waiting, ${q.inFlight} under way, oldest ${q.oldestJobAgeMs === null ? '-' : `${Math.round(q.oldestJobAgeMs / 1000)} s`}; since start: ${q.queued} queued, ${q.done} done, ${q.expired} expired, ${q.lost} lost`
    : 'off';
  const circuits = stats.circuits.length
    ? stats.circuits
        .map(
          (c) =>
            `${escapeHtml(c.site)}: <strong>${escapeHtml(c.state)}</strong>${c.openForMs === null ? '' : ` for ${Math.round(c.openForMs / 1000)} s`}`,
        )
        .join(', ')
    : 'off';
  return `<section id="stats"><h2>The middleware since ${escapeHtml(stats.since.slice(11, 19))} UTC</h2>
<p class="muted">From <code>portalLogout.stats()</code>; the same JSON is served at <a href="/healthz/chargebee">/healthz/chargebee</a>.</p>
<table><tbody>
<tr><th>Logouts</th><td id="stats-logouts">${counts(stats.logouts)}</td></tr>
<tr><th>Portal sessions</th><td id="stats-portal-sessions">${counts(stats.portalSessions)}</td></tr>
<tr><th>Deferred, final</th><td id="stats-deferred">${counts(stats.deferredResults)}</td></tr>
<tr><th>Queue</th><td id="stats-queue">${escapeHtml(queue)}</td></tr>
<tr><th>Circuit breaker</th><td id="stats-circuits">${circuits}</td></tr>
</tbody></table></section>`;
}

export function renderHome(page: HomePage): string {
  const parts: string[] = [
    '<h1>chargebee-portal-logout demo</h1>',
    `<p class="muted">An app that signs you out of your Chargebee billing portal when you sign out of it. Chargebee: ${escapeHtml(page.chargebee.description)}.</p>`,
  ];
  if (page.notice) parts.push(`<p class="notice" role="status">${escapeHtml(page.notice)}</p>`);
  if (page.lastLogout) parts.push(outcomeBox(page.lastLogout));
  if (page.user) {
    parts.push(
      `<p id="signed-in">Signed in as <strong>${escapeHtml(page.user.email)}</strong> <span class="muted">(Chargebee customer <code>${escapeHtml(page.user.customerId)}</code>)</span></p>`,
      '<form method="post" action="/billing/portal"><button>Open the billing portal</button></form>',
      '<form method="post" action="/logout"><button>Sign out</button></form>',
      '<form method="post" action="/logout/everywhere"><button>Sign out of all devices</button></form>',
      '<h2>Your portal sessions on all devices</h2>',
      '<p class="muted">Opened in this sign-in (this device), and by your other sign-ins (another device), as the registry keeps them; the status is what Chargebee says now.</p>',
      ...(page.expiry ? [expiryNote(page.expiry)] : []),
      rememberedTable(page.remembered, page.expiry !== undefined),
    );
    if (page.registryError)
      parts.push(
        `<p class="bad">The portal sessions of your other devices could not be listed: ${escapeHtml(page.registryError)}</p>`,
      );
  } else {
    parts.push(
      '<p id="signed-out">Nobody is signed in.</p>',
      '<form method="post" action="/login"><label>Email <input type="text" inputmode="email" autocomplete="email" name="email" required placeholder="zoë@exämple.com"></label> <button>Sign in</button></form>',
      '<p class="muted">Any address works: this stands in for your app\'s real sign-in.</p>',
    );
  }
  if (page.chargebee.emulatorUrl) {
    const url = escapeHtml(page.chargebee.emulatorUrl);
    parts.push(
      `<h2>What Chargebee saw</h2><p>The emulator's page <a href="${url}" target="_blank" rel="noopener">${url}</a> lists each portal session, its status, and the origin headers its logout carried (IP, device, email, entity).</p>`,
    );
  }
  if (page.stats) parts.push(statsBox(page.stats));
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>chargebee-portal-logout demo</title><style>${STYLE}</style></head>
<body>
${parts.join('\n')}
</body></html>
`;
}
