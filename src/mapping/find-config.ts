import { existsSync } from 'node:fs';
import { parse, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { defaultLoaders, lilconfig, type Loader } from 'lilconfig';
import { SeatctlError, usageError } from '../errors.js';
import { parseConfig, type SeatctlConfig } from './config.js';

export const CONFIG_FILES = ['seatctl.config.json', 'seatctl.config.mjs', 'seatctl.config.cjs', 'package.json'];

export interface FoundConfig {
  config: SeatctlConfig;
  /** Absolute path of the file it came from. */
  filepath: string;
}

export interface FindConfigOptions {
  /** Where the search starts; it goes up to the file system's root. Default: the process's directory. */
  cwd?: string;
  /** A config file to load instead of searching. */
  file?: string;
}

/**
 * The config: `file` when given, else the first of `seatctl.config.json`,
 * `.mjs`, `.cjs` or a `"seatctl"` key in package.json, in `cwd` or the nearest
 * parent that has one. Undefined when there is none.
 */
export async function findConfig(options: FindConfigOptions = {}): Promise<FoundConfig | undefined> {
  const cwd = options.cwd ?? process.cwd();
  const root = parse(resolve(cwd)).root;
  const explorer = lilconfig('seatctl', {
    searchPlaces: CONFIG_FILES,
    stopDir: root,
    cache: false,
    loaders: { '.json': readJson, '.mjs': importModule, '.cjs': importModule, '.js': importModule },
  });
  let found: { config: unknown; filepath: string } | null;
  if (options.file !== undefined) {
    const filepath = resolve(cwd, options.file);
    if (!existsSync(filepath)) throw usageError(`the config file ${filepath} does not exist`);
    found = await explorer.load(filepath);
    if (found?.config == null) throw usageError(`the config file ${filepath} is empty`);
  } else {
    found = await explorer.search(cwd);
  }
  if (found === null || found.config == null) return undefined;
  return { config: parseConfig(found.config, found.filepath), filepath: found.filepath };
}

// Loaders that say which file is broken, in one sentence.
const readJson: Loader = (filepath, content) => {
  try {
    return JSON.parse(content.replace(/^\uFEFF/, ''));
  } catch (error) {
    throw usageError(`${filepath} is not valid JSON: ${(error as Error).message}`);
  }
};

/** Set by bin/seatctl.cjs, whose vm-compiled bundle can't import() itself on Node 20. */
const hostImport = (globalThis as Record<symbol, unknown>)[Symbol.for('seatctl.import')] as
  | ((url: string) => Promise<{ default?: unknown }>)
  | undefined;

const importModule: Loader = async (filepath, content) => {
  try {
    if (hostImport !== undefined) return (await hostImport(pathToFileURL(filepath).href)).default;
    const loaded = await defaultLoaders['.mjs'](filepath, content);
    // require() of an ES module (lilconfig's fallback) hands back the namespace, not its default export.
    return loaded !== null && typeof loaded === 'object' && '__esModule' in loaded && 'default' in loaded
      ? (loaded as { default: unknown }).default
      : loaded;
  } catch (error) {
    if (error instanceof SeatctlError) throw error;
    const message = String((error as Error)?.message ?? error).split('\n')[0];
    throw usageError(`cannot load the config ${filepath}: ${message}`);
  }
};
