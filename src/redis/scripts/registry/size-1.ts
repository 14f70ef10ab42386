import { defineScript } from '../../scripts-runner';

/**
 * Portal sessions kept, every site and customer together.
 * KEYS: 1 entries.
 */
export const REGISTRY_SIZE = defineScript('registry-size', 1, `return redis.call('HLEN', KEYS[1])`);
