/** Public face of config/: load and validate slardar.json5 into a frozen Config. */

export { ConfigFileError, ConfigInvalidError } from './errors.js'
export {
  buildConfig,
  type ConfigEnv,
  type ConfigOverrides,
  describeConfig,
  listOptionPaths,
  loadConfigFile,
  MASKED_SECRET,
  parseConfigText,
} from './load.js'
export { type Config, type ConsulServer, type NextUpstreamCondition, schema } from './schema.js'
export { formatHostPort, type HostPort, parseDurationSec, parseSizeBytes } from './values.js'
export { configToApply, type ConfigDiff, diffConfig, RELOAD_CLASS, type ReloadClass } from './diff.js'
