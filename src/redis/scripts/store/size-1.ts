import { defineScript } from '../../scripts-runner';

/**
 * Jobs kept, handed-over ones included.
 * KEYS: 1 jobs.
 */
export const SIZE = defineScript('size', 1, `return redis.call('HLEN', KEYS[1])`);
