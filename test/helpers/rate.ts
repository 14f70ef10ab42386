/**
 * What a drain limited to `perMinute` with a burst of `burst` may look like from the server's side: in any
 * stretch of time, at most the burst plus the rate's share of that stretch (`slackMs` allows for the two
 * clocks and the network between the limiter and the server). Returns the worst stretch, for the message.
 */
export function worstOverRate(
  times: number[],
  perMinute: number,
  burst: number,
  slackMs = 50,
): { requests: number; allowed: number; fromMs: number; toMs: number } | undefined {
  const sorted = [...times].sort((a, b) => a - b);
  let worst: { requests: number; allowed: number; fromMs: number; toMs: number } | undefined;
  for (let i = 0; i < sorted.length; i++)
    for (let j = i; j < sorted.length; j++) {
      const requests = j - i + 1;
      const allowed = burst + Math.floor(((sorted[j] - sorted[i] + slackMs) * perMinute) / 60_000);
      if (requests > allowed && (!worst || requests - allowed > worst.requests - worst.allowed))
        worst = { requests, allowed, fromMs: sorted[i] - sorted[0], toMs: sorted[j] - sorted[0] };
    }
  return worst;
}

/** Requests per minute from the first to the last of `times` after the first `skip` (the burst). */
export function paceAfter(times: number[], skip: number): number {
  const steady = [...times].sort((a, b) => a - b).slice(skip);
  return ((steady.length - 1) * 60_000) / (steady[steady.length - 1] - steady[0]);
}
