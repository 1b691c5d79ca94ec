import { act, cleanup, screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { ApiError } from "../api";
import type { MessageView } from "../model";
import { ANA, ANA_AUTHOR, ME, ME_AUTHOR, message, stubApi } from "../test/stubApi";
import { renderApp } from "../test/renderApp";

const MIN = 60_000;

function cardAt(at: number, over: Partial<Extract<MessageView["body"], { type: "meetup" }>> = {}): MessageView {
  return message({
    body: { type: "meetup", place: "the big wheel", at, until: at + 30 * MIN, coming: 1, cant: 0, mine: null, people: [{ peer: ANA, me: false, who: ANA_AUTHOR, answer: "coming" }], ...over },
  });
}


beforeEach(() => localStorage.clear());
afterEach(() => {
  cleanup();
  vi.useRealTimers();
});

describe("meet-up cards", () => {
  it("shows the place, the time and who comes; one tap answers and the card shows it", async () => {
    const card = cardAt(Date.now() + 40 * MIN);
    const answered: MessageView = {
      ...card,
      body: { ...(card.body as Extract<MessageView["body"], { type: "meetup" }>), coming: 2, mine: "coming", people: [{ peer: ME, me: true, who: ME_AUTHOR, answer: "coming" }, { peer: ANA, me: false, who: ANA_AUTHOR, answer: "coming" }] },
    };
    const api = stubApi({ history: async () => ({ messages: [card], next: null }), answerMeetup: vi.fn(async () => answered) });
    renderApp(api);
    const group = await screen.findByRole("group", { name: /Meet at the big wheel/ });
    expect(within(group).getByText("1 coming")).toBeInTheDocument();
    expect(within(group).getByText(/in 40 min/)).toBeInTheDocument();
    const coming = within(group).getByRole("button", { name: "Coming" });
    expect(coming).toHaveAttribute("aria-pressed", "false");
    await userEvent.setup().click(coming);
    expect(api.answerMeetup).toHaveBeenCalledWith(card.id, "coming");
    await waitFor(() => expect(within(group).getByText("2 coming")).toBeInTheDocument());
    expect(within(group).getByRole("button", { name: "Coming" })).toHaveAttribute("aria-pressed", "true");
    expect(within(group).getByText("You")).toBeInTheDocument();
    // The answer given already: a second tap signs and sends nothing.
    await userEvent.setup().click(within(group).getByRole("button", { name: "Coming" }));
    expect(api.answerMeetup).toHaveBeenCalledTimes(1);
  });

  it("an update names only cards shown: it brings no message in (a blocked person's, a text named by a forged answer)", async () => {
    const shown = cardAt(Date.now() + 40 * MIN);
    const api = stubApi({ history: async () => ({ messages: [shown], next: null }) });
    renderApp(api);
    await screen.findByRole("group", { name: /Meet at the big wheel/ });
    const other = cardAt(Date.now() + 50 * MIN, { place: "the north gate" });
    act(() => api.emit({ event: "meetup_changed", ...other }));
    const text = message({ body: { type: "text", text: "an old text re-sent as a card update" } });
    act(() => api.emit({ event: "meetup_changed", ...text }));
    await act(async () => {});
    expect(screen.queryByRole("group", { name: /north gate/ })).not.toBeInTheDocument();
    expect(screen.queryByText("an old text re-sent as a card update")).not.toBeInTheDocument();
  });

  it("takes others' answers live, and an answer that fails says why", async () => {
    const card = cardAt(Date.now() + 40 * MIN);
    const api = stubApi({
      history: async () => ({ messages: [card], next: null }),
      answerMeetup: vi.fn(async () => {
        throw new ApiError("meetup_over", "That meet-up is over.");
      }),
    });
    renderApp(api);
    const group = await screen.findByRole("group", { name: /Meet at the big wheel/ });
    const changed = { ...card, body: { ...(card.body as Extract<MessageView["body"], { type: "meetup" }>), coming: 1, cant: 1 } };
    act(() => api.emit({ event: "meetup_changed", ...changed }));
    expect(await within(group).findByText("1 coming · 1 can't")).toBeInTheDocument();
    await userEvent.setup().click(within(group).getByRole("button", { name: "Can't" }));
    expect(await within(group).findByRole("alert")).toHaveTextContent("That meet-up is over.");
  });

  it("a card goes half an hour after its time, without a reload", async () => {
    vi.useFakeTimers({ shouldAdvanceTime: true });
    const card = cardAt(Date.now() + 2 * MIN);
    renderApp(stubApi({ history: async () => ({ messages: [card], next: null }) }));
    expect(await screen.findByRole("group", { name: /Meet at the big wheel/ })).toBeInTheDocument();
    await act(async () => {
      await vi.advanceTimersByTimeAsync(33 * MIN);
    });
    expect(screen.queryByRole("group", { name: /Meet at the big wheel/ })).not.toBeInTheDocument();
  });

  it("is posted from the composer with the keyboard alone; a bad place is refused in place", async () => {
    const api = stubApi();
    renderApp(api);
    const user = userEvent.setup();
    await screen.findByRole("textbox", { name: "Message" });
    // From the message box, Shift+Tab reaches the meet-up button; Enter opens the form.
    screen.getByRole("textbox", { name: "Message" }).focus();
    await user.tab({ shift: true });
    expect(screen.getByRole("button", { name: "New meet-up" })).toHaveFocus();
    await user.keyboard("{Enter}");
    const form = screen.getByRole("form", { name: "New meet-up" });
    const place = within(form).getByRole("textbox", { name: "Where" });
    expect(place).toHaveFocus();
    await user.keyboard("{Enter}");
    expect(within(form).getByRole("alert")).toHaveTextContent("Say where to meet.");
    expect(api.sendMeetup).not.toHaveBeenCalled();
    await user.type(place, "food trucks{Enter}");
    await waitFor(() => expect(api.sendMeetup).toHaveBeenCalledWith("festival", "food trucks", expect.any(Number)));
    const at = vi.mocked(api.sendMeetup).mock.calls[0]![2];
    expect(at).toBeGreaterThan(Date.now());
    expect(await screen.findByRole("group", { name: /Meet at food trucks/ })).toBeInTheDocument();
    expect(screen.queryByRole("form", { name: "New meet-up" })).not.toBeInTheDocument();
    // Escape closes it, and the focus goes back to the button.
    screen.getByRole("button", { name: "New meet-up" }).focus();
    await user.keyboard("{Enter}");
    expect(within(screen.getByRole("form", { name: "New meet-up" })).getByRole("textbox", { name: "Where" })).toHaveFocus();
    await user.keyboard("{Escape}");
    expect(screen.queryByRole("form", { name: "New meet-up" })).not.toBeInTheDocument();
    await waitFor(() => expect(screen.getByRole("button", { name: "New meet-up" })).toHaveFocus());
  });
});
