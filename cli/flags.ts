/** Flag parsing shared by the commands: core/inputs.ts checks, adapted to commander. */
import { InvalidArgumentError } from "@commander-js/extra-typings";
import { InputError } from "./core/inputs.ts";

/** Adapts a core/inputs.ts check to commander, which names the flag in its message. */
export function checked<T>(parse: (value: string) => T): (value: string) => T {
  return (value) => {
    try {
      return parse(value);
    } catch (error) {
      if (error instanceof InputError) throw new InvalidArgumentError(error.message);
      throw error;
    }
  };
}
