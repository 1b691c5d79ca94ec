import { describe, expect, it } from "vitest";
import { ApiError, asErrorCode, toApiError } from "./api";

describe("errors from the node", () => {
  it("keeps code and message of a { code, message } rejection", () => {
    const e = toApiError({ code: "message_too_long", message: "text is 5000 bytes, max 4000" });
    expect(e).toBeInstanceOf(ApiError);
    expect(e.code).toBe("message_too_long");
    expect(e.message).toBe("text is 5000 bytes, max 4000");
  });
  it("types the code: one the node does not have (or a Tauri refusal) is 'error', the message kept", () => {
    const e = toApiError({ code: "text_too_long", message: "from an older node" });
    expect(e.code).toBe("error");
    expect(e.message).toBe("from an older node");
    expect(asErrorCode("meetup_over")).toBe("meetup_over");
    expect(asErrorCode("toString")).toBe("error");
    expect(asErrorCode(7)).toBe("error");
  });
  it("wraps a bare string and anything else", () => {
    expect(toApiError("boom").message).toBe("boom");
    expect(toApiError(undefined).message).toMatch(/Something went wrong/);
  });
});
