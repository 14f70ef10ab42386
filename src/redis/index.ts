/**
 * `chargebee-portal-logout/redis`: what an app with several instances keeps in Redis: the deferred-logout
 * queue and the registry of open portal sessions by site and customer. Needs the `redis` package
 * (node-redis 5 or 6), an optional peer dependency of this package; works on a plain Redis and on Redis
 * Cluster.
 */
export {
  RedisDeferredLogoutStore,
  DEFAULT_REDIS_PREFIX,
  DEFAULT_REDIS_MAX_QUEUED,
  DEFAULT_LEASE_MS,
  type RedisDeferredLogoutStoreOptions,
  type RedisClientLike,
  type RedisScriptArguments,
} from './store';
export { DEFAULT_COMMAND_TIMEOUT_MS } from './options';
export {
  RedisPortalSessionRegistry,
  DEFAULT_REGISTRY_PREFIX,
  DEFAULT_REDIS_REGISTRY_MAX_ENTRIES,
  type RedisPortalSessionRegistryOptions,
} from './registry';
