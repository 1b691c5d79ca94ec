import { act, render, screen } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { AnnouncementView } from "../model";
import { clockTime } from "../logic/format";
import { AnnouncementBanner } from "./AnnouncementBanner";

const T0 = Date.UTC(2026, 6, 4, 20, 0);
const a = (id: string, text: string, created_at: number, until: number): AnnouncementView => ({ id: id.padEnd(64, "0"), text, created_at, until });

describe("the organiser's banner", () => {
  beforeEach(() => {
    vi.useFakeTimers({ shouldAdvanceTime: true });
    vi.setSystemTime(T0);
  });
  afterEach(() => vi.useRealTimers());

  it("shows the newest in full with its end, the others behind a toggle", async () => {
    const list = [a("2", "East gate closes at 23:00", T0 - 1_000, T0 + 3_600_000), a("1", "Water at stage 2", T0 - 5_000, T0 + 7_200_000)];
    render(<AnnouncementBanner announcements={list} />);
    const region = screen.getByRole("region", { name: "Announcements from the organiser" });
    expect(region).toHaveTextContent("East gate closes at 23:00");
    expect(region).toHaveTextContent(`until ${clockTime(T0 + 3_600_000)}`);
    expect(region).not.toHaveTextContent("Water at stage 2");
    const more = screen.getByRole("button", { name: "1 more announcement" });
    await userEvent.setup({ advanceTimers: vi.advanceTimersByTime }).click(more);
    expect(region).toHaveTextContent("Water at stage 2");
    expect(more).toHaveAttribute("aria-expanded", "true");
  });

  it("takes each down when its end comes, without a reload", () => {
    const list = [a("1", "Fireworks at 22:00", T0, T0 + 60_000)];
    render(<AnnouncementBanner announcements={list} />);
    expect(screen.getByRole("region")).toHaveTextContent("Fireworks at 22:00");
    act(() => {
      vi.advanceTimersByTime(61_000);
    });
    expect(screen.getByRole("region")).not.toHaveTextContent("Fireworks");
  });

  it("shows nothing for none, or only ended ones", () => {
    render(<AnnouncementBanner announcements={[a("1", "Over", T0 - 10_000, T0 - 1)]} />);
    expect(screen.getByRole("region")).toHaveTextContent(/^$/);
    expect(screen.queryByText("Over")).toBeNull();
  });
});
