/** What the emulator remembers: portal sessions, idempotent answers and the request record, all bounded. */
import { randomBytes } from 'node:crypto';
import { safeDecode, type Answer } from './http';
import type { EmulatedPortalSession, PortalPageOutcome, RecordedRequest } from './types';

const ACCESS_URL_LIFETIME_S = 3600;
const ALPHANUMERIC = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

export function randomAlphanumeric(length: number): string {
  const bytes = randomBytes(length);
  let out = '';
  // The modulo bias does not matter for test identifiers.
  for (let i = 0; i < length; i++) out += ALPHANUMERIC[bytes[i] % ALPHANUMERIC.length];
  return out;
}

export function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
}

const LOGOUT_PATH = /^\/[^/?]+\/api\/v2\/portal_sessions\/([^/?]+)\/logout(?:\?|$)/;

/** The portal-session ID a recorded request logged out, or `undefined` when it is not a logout. */
export function loggedOutId(r: RecordedRequest): string | undefined {
  const m = r.method === 'POST' ? LOGOUT_PATH.exec(r.path) : null;
  return m ? safeDecode(m[1]) : undefined;
}

export function copySession(s: EmulatedPortalSession): EmulatedPortalSession {
  return { ...s, linked_customers: s.linked_customers.map((c) => ({ ...c })) };
}

export interface StoredSession {
  site: string;
  data: EmulatedPortalSession;
}

export interface NewSession {
  site: string;
  customerId: string;
  email?: string;
  redirectUrl?: string;
  /** Unix seconds. Default: now. */
  createdAt?: number;
}

/** Portal sessions by ID and by access-URL token, with Chargebee's state machine. */
export class SessionStore {
  readonly byId = new Map<string, StoredSession>();
  readonly byToken = new Map<string, StoredSession>();

  /** `accessUrlBase()` is read per session: the listening URL is known only once the server listens. */
  constructor(private readonly accessUrlBase: () => string) {}

  create(input: NewSession): StoredSession {
    const { site, customerId, email, redirectUrl, createdAt = nowSeconds() } = input;
    let id = `portal_${randomAlphanumeric(20)}`;
    while (this.byId.has(id)) id = `portal_${randomAlphanumeric(20)}`;
    const token = randomAlphanumeric(32);
    const data: EmulatedPortalSession = {
      id,
      token,
      access_url: `${this.accessUrlBase()}/portal/${site}/${token}`,
      ...(redirectUrl !== undefined && { redirect_url: redirectUrl }),
      status: 'created',
      created_at: createdAt,
      expires_at: createdAt + ACCESS_URL_LIFETIME_S,
      customer_id: customerId,
      linked_customers: [
        {
          customer_id: customerId,
          ...(email !== undefined && { email }),
          has_billing_address: false,
          has_payment_method: false,
          has_active_subscription: false,
        },
      ],
      object: 'portal_session',
    };
    const stored = { site, data };
    this.byId.set(id, stored);
    this.byToken.set(token, stored);
    return stored;
  }

  findInSite(site: string, id: string): StoredSession | undefined {
    const stored = this.byId.get(id);
    return stored && stored.site === site ? stored : undefined;
  }

  /** The access URL works once, within its hour. */
  open(stored: StoredSession, ip: string | undefined): PortalPageOutcome {
    const s = stored.data;
    if (s.status === 'logged_out') return 'ended';
    if (s.status !== 'created') return 'already_used';
    const now = nowSeconds();
    if (now > s.expires_at) return 'expired';
    s.status = 'logged_in';
    s.login_at = now;
    if (ip !== undefined) s.login_ipaddress = ip;
    return 'logged_in';
  }

  logout(stored: StoredSession, ip: string | undefined): void {
    const s = stored.data;
    if (s.status === 'logged_out') return;
    s.status = 'logged_out';
    s.logout_at = nowSeconds();
    if (ip !== undefined) s.logout_ipaddress = ip;
  }

  clear(): void {
    this.byId.clear();
    this.byToken.clear();
  }
}

interface IdempotentAnswer {
  at: number;
  /** The request it answered: a reuse of the key for another request is refused. */
  fingerprint: string;
  answer: Answer;
}

/** First answers by idempotency key, for `windowMs`, at most `limit` keys (the oldest are dropped). */
export class IdempotencyCache {
  private readonly entries = new Map<string, IdempotentAnswer>();

  constructor(
    private readonly windowMs: number,
    private readonly limit: number,
  ) {}

  get(key: string, now: number): IdempotentAnswer | undefined {
    const cached = this.entries.get(key);
    return cached && now - cached.at < this.windowMs ? cached : undefined;
  }

  set(key: string, entry: IdempotentAnswer): void {
    if (this.limit === 0) return;
    const cache = this.entries;
    cache.delete(key);
    cache.set(key, entry);
    // Insertion order is time order, so expired and surplus entries are all at the front.
    const expiredBefore = entry.at - this.windowMs;
    for (const [k, v] of cache) {
      if (cache.size <= this.limit && v.at > expiredBefore) break;
      cache.delete(k);
    }
  }

  clear(): void {
    this.entries.clear();
  }
}

/** Keeps the newest `limit` entries in a ring, so dropping the oldest costs nothing. */
export class RequestRecord {
  private entries: RecordedRequest[] = [];
  private start = 0;

  constructor(private readonly limit: number) {}

  push(entry: RecordedRequest): void {
    if (this.limit === 0) return;
    if (this.entries.length < this.limit) {
      this.entries.push(entry);
    } else {
      this.entries[this.start] = entry;
      this.start = (this.start + 1) % this.limit;
    }
  }

  toArray(): RecordedRequest[] {
    return this.start === 0
      ? this.entries.slice()
      : this.entries.slice(this.start).concat(this.entries.slice(0, this.start));
  }

  clear(): void {
    this.entries = [];
    this.start = 0;
  }
}
