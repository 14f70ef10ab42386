import type { Request } from 'express';

/**
 * Whether the app trusts every proxy (`app.set('trust proxy', true)`). Then `req.ip` is the left-most
 * `X-Forwarded-For` address, which any client can write: the IP Chargebee records as fraud and VAT
 * evidence becomes the client's choice.
 */
export function trustsEveryProxy(req: Request): boolean {
  const app = req.app as { get?: (setting: string) => unknown } | undefined;
  if (typeof app?.get !== 'function') return false;
  try {
    return app.get('trust proxy') === true;
  } catch {
    return false;
  }
}

export const TRUST_PROXY_WARNING =
  "app.set('trust proxy', true) lets any client choose the IP sent to Chargebee as fraud and VAT evidence " +
  "(X-Forwarded-For is trusted from everyone); trust only your proxies: 'loopback', a hop count such as 1, " +
  "or the proxies' addresses";
