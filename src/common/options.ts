/**
 * Config key tables: each area declares its keys in `src/<area>/options.ts` with {@link defineOptions},
 * one table per config-file section, and takes its type from the table with {@link OptionsOf}, so a
 * key without a type, or a type without a key, cannot compile. src/config/config.ts assembles the
 * sections, validates a raw config against them and writes docs/CONFIG.md from them.
 *
 * Example: `defineOptions({ port: { kind: 'int', default: 0, min: 0, max: 65_535, description: '...' } })`
 * has the type `OptionsOf<typeof T>` = `{ readonly port: number }`.
 */

/** Bytes in a mebibyte (2^20), for defaults written as `16 * MiB`. */
export const MiB = 1024 * 1024
/** Bytes in a gibibyte (2^30). */
export const GiB = 1024 * MiB

interface OptionBase {
  /** One line for docs/CONFIG.md: what the key does, with its unit. */
  readonly description: string
}

/** A whole number (a JSON number that is a safe integer; env: decimal digits). */
export interface IntOption extends OptionBase {
  readonly kind: 'int'
  readonly default: number
  /** Smallest value accepted (inclusive); none when absent. */
  readonly min?: number
  /** Largest value accepted (inclusive); none when absent. */
  readonly max?: number
}

/** A string (env: the variable's text). */
export interface StringOption extends OptionBase {
  readonly kind: 'string'
  readonly default: string
  /** A rule beyond the kind: the problem with `value` (`'must start with "/"'`), or undefined when fine. */
  readonly check?: (value: string) => string | undefined
}

/** A list of strings (env: comma-separated, blanks dropped). */
export interface StringsOption extends OptionBase {
  readonly kind: 'strings'
  readonly default: readonly string[]
  /** A rule beyond the kind: the problem with `value`, or undefined when fine. */
  readonly check?: (value: readonly string[]) => string | undefined
}

/** One of a fixed set of strings. */
export interface EnumOption<V extends string = string> extends OptionBase {
  readonly kind: 'enum'
  readonly default: V
  readonly values: readonly V[]
}

/** One config key. */
export type OptionSpec = IntOption | StringOption | StringsOption | EnumOption

/** The keys of one config-file section, by key name (in docs order). */
export type OptionTable = { readonly [key: string]: OptionSpec }

/** The value type a key's spec gives: int → number, string → string, strings → readonly string[], enum → its values. */
export type OptionValue<S extends OptionSpec> = S extends IntOption
  ? number
  : S extends StringOption
    ? string
    : S extends StringsOption
      ? readonly string[]
      : S extends EnumOption<infer V>
        ? V
        : never

/** The (frozen) values of a section, typed from its table. */
export type OptionsOf<T extends OptionTable> = { readonly [K in keyof T]: OptionValue<T[K]> }

/** An enum key's default must be one of its values; other kinds are taken as they are. */
type Checked<T extends OptionTable> = {
  readonly [K in keyof T]: T[K] extends {
    readonly kind: 'enum'
    readonly values: readonly (infer V extends string)[]
  }
    ? EnumOption<V>
    : T[K]
}

/**
 * Declares one section's keys. Returns the table itself, frozen (its types kept literal, so
 * {@link OptionsOf} can derive the section's type). An enum's default outside its values does not compile.
 */
export function defineOptions<const T extends OptionTable>(table: T & Checked<T>): T {
  return Object.freeze(table)
}
