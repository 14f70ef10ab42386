import { defineScript } from '../../scripts-runner';
import { CLOCK } from './includes';

/**
 * Redis's clock, for the store's estimate of how far it is from the caller's (job-codec.ts ClockSkew).
 * KEYS: 1 jobs (only so that a Cluster client sends the script to the node of the store's slot, whose clock
 * the store's scripts read).
 * Returns { clock }.
 */
export const CLOCK_PROBE = defineScript('clock', 1, CLOCK, `return { int(clock) }`);
