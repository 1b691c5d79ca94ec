import { render, screen } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, describe, expect, it, vi } from "vitest";
import { ScanButton } from "./ScanCode";

afterEach(() => {
  Reflect.deleteProperty(navigator, "mediaDevices");
});

describe("scanning a code", () => {
  it("offers no scan button without a camera API (paste stays)", () => {
    render(<ScanButton onCode={() => {}} />);
    expect(screen.queryByRole("button", { name: /Scan/ })).not.toBeInTheDocument();
  });

  it("says so when the camera cannot be used, without crashing", async () => {
    Object.defineProperty(navigator, "mediaDevices", {
      configurable: true,
      value: { getUserMedia: vi.fn(async () => Promise.reject(new DOMException("denied", "NotAllowedError"))) },
    });
    const onCode = vi.fn();
    render(<ScanButton onCode={onCode} />);
    await userEvent.click(screen.getByRole("button", { name: /Scan/ }));
    expect(await screen.findByRole("alert")).toHaveTextContent("Paste their code instead");
    expect(onCode).not.toHaveBeenCalled();
  });
});
