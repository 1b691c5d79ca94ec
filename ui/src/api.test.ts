import { describe, expect, it } from "vitest";
import { ApiError, toApiError } from "./api";

describe("errors from the node", () => {
  it("keeps code and message of a { code, message } rejection", () => {
    const e = toApiError({ code: "text_too_long", message: "text is 5000 bytes, max 4000" });
    expect(e).toBeInstanceOf(ApiError);
    expect(e.code).toBe("text_too_long");
    expect(e.message).toBe("text is 5000 bytes, max 4000");
  });
  it("wraps a bare string and anything else", () => {
    expect(toApiError("boom").message).toBe("boom");
    expect(toApiError(undefined).message).toMatch(/Something went wrong/);
  });
});
