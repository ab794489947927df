// The VaultError a call throws (or a promise rejects with); the test fails if it does not.
import { expect } from "vitest";
import { VaultError } from "../../src/core/errors.js";

export function rejection(run: () => unknown): VaultError {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(VaultError);
    return error as VaultError;
  }
  throw new Error("expected a VaultError");
}

export async function failure(p: Promise<unknown>): Promise<VaultError> {
  try {
    await p;
  } catch (error) {
    expect(error).toBeInstanceOf(VaultError);
    return error as VaultError;
  }
  throw new Error("expected the promise to reject");
}
