import { act, cleanup, screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { beforeEach, describe, expect, it, vi } from "vitest";
import { ANA, dl, ME, message, peer, room, settings, stubApi } from "./test/stubApi";
import { renderApp } from "./test/renderApp";


beforeEach(() => localStorage.clear());

describe("first start", () => {
  it("asks for a name, refuses an empty one, then shows the QR code and fingerprint", async () => {
    const api = stubApi({ appState: async () => ({ onboarded: false, status: null, settings: { ...settings, name: "" }, error: null }) });
    renderApp(api);
    const user = userEvent.setup();
    await user.click(await screen.findByRole("button", { name: "Continue" }));
    expect(screen.getByRole("alert")).toHaveTextContent(/Pick a name/);
    expect(api.onboard).not.toHaveBeenCalled();

    await user.type(screen.getByPlaceholderText("Your name"), "Mia");
    await user.click(screen.getByRole("button", { name: "Continue" }));
    expect(api.onboard).toHaveBeenCalledWith("Mia");
    expect(await screen.findByRole("img", { name: /QR code/ })).toBeInTheDocument();
    expect(screen.getByLabelText("Your fingerprint")).toHaveTextContent("AAAA-BBBB-CCCC-DDDD");
    await user.click(screen.getByRole("button", { name: "Start chatting" }));
    expect(await screen.findByRole("textbox", { name: "Message" })).toBeInTheDocument();
  });
});

describe("chat", () => {
  it("shows history and a live message once, with author and state of own messages", async () => {
    const old = message({ body: { type: "text", text: "hello from history" } });
    const mine = message({ author: ME, mine: true, body: { type: "text", text: "my note" }, delivery: dl({ state: "saved", waiting: "no_one_nearby" }) });
    const api = stubApi({ history: async (room) => ({ messages: room === "festival" ? [old, mine] : [], next: null }) });
    renderApp(api);
    expect(await screen.findByText("hello from history")).toBeInTheDocument();
    expect(screen.getByText(/Waiting: no one in reach yet/)).toBeInTheDocument();

    act(() => api.emit({ event: "message", ...old }));
    act(() => api.emit({ event: "message", ...message({ body: { type: "text", text: "live one" } }) }));
    expect(await screen.findByText("live one")).toBeInTheDocument();
    expect(screen.getAllByText("hello from history")).toHaveLength(1);

    act(() => api.emit({ event: "delivery", id: mine.id, delivery: dl({ state: "sent", path: "relay" }) }));
    expect(await screen.findByText("Sent via relay")).toBeInTheDocument();
    expect(screen.queryByText(/Waiting: no one in reach yet/)).not.toBeInTheDocument();
    act(() => api.emit({ event: "delivery", id: mine.id, delivery: dl({ state: "at_relay", path: "relay", at_relay: true, as_of: Date.now() + 1 }) }));
    expect(await screen.findByText("Stored at the relay")).toBeInTheDocument();
    act(() => api.emit({ event: "delivery", id: mine.id, delivery: dl({ state: "read", delivered_to: 1, read_by: 1, as_of: Date.now() + 2 }) }));
    expect(await screen.findByText("Read")).toBeInTheDocument();
  });

  it("opens a sealed DM from an author's name in a room, and sends it there", async () => {
    const hi = message({ body: { type: "text", text: "anyone at the gate?" } });
    const api = stubApi({ history: async (r) => ({ messages: r === "festival" ? [hi] : [], next: null }) });
    renderApp(api);
    const user = userEvent.setup();
    // The name comes with its short fingerprint: Ana is not verified.
    await user.click(await screen.findByRole("button", { name: "Ana fingerprint 3F2A" }));
    expect(await screen.findByText(/Sealed: only you two can read this/)).toBeInTheDocument();
    await user.type(screen.getByRole("textbox", { name: "Message" }), "I am!{Enter}");
    await waitFor(() => expect(api.sendDm).toHaveBeenCalledWith(ANA, "I am!"));
    expect(api.send).not.toHaveBeenCalled();
  });

  it("keeps the text when a send fails and says why", async () => {
    const api = stubApi({
      send: async () => {
        throw { code: "store", message: "store is busy" };
      },
    });
    renderApp(api);
    const user = userEvent.setup();
    const box = await screen.findByRole("textbox", { name: "Message" });
    await user.type(box, "meet at the flag{Enter}");
    expect(await screen.findByRole("alert")).toHaveTextContent("Not sent: store is busy");
    expect(box).toHaveValue("meet at the flag");
  });

  it("refuses an oversized message before sending, with the byte count", async () => {
    const api = renderApp();
    const user = userEvent.setup();
    const box = await screen.findByRole("textbox", { name: "Message" });
    await user.click(box);
    await user.paste("x".repeat(4001));
    await user.keyboard("{Enter}");
    expect(screen.getByRole("alert")).toHaveTextContent("4001 of 4000 bytes");
    expect(api.send).not.toHaveBeenCalled();
    expect(box).toHaveValue("x".repeat(4001));
  });

  it("clears the draft once the node has the message", async () => {
    const api = renderApp();
    const user = userEvent.setup();
    const box = await screen.findByRole("textbox", { name: "Message" });
    await user.type(box, "hi all{Enter}");
    await waitFor(() => expect(box).toHaveValue(""));
    expect(api.send).toHaveBeenCalledWith("festival", "hi all");
    expect(await screen.findByText("hi all")).toBeInTheDocument();
  });

  it("keeps a draft per room when switching", async () => {
    const api = stubApi({
      rooms: async () => [
        room("festival"),
        room("camp", { name: "Camp", unread: 2, last_activity: 5 }),
      ],
    });
    renderApp(api);
    const user = userEvent.setup();
    await user.type(await screen.findByRole("textbox", { name: "Message" }), "half a thought");
    const nav = screen.getByRole("navigation");
    expect(within(nav).getByLabelText("2 unread")).toBeInTheDocument();
    await user.click(within(nav).getByRole("button", { name: /Camp/ }));
    expect(screen.getByRole("textbox", { name: "Message" })).toHaveValue("");
    expect(within(nav).queryByLabelText("2 unread")).not.toBeInTheDocument();
    await user.click(within(nav).getByRole("button", { name: /Festival/ }));
    expect(screen.getByRole("textbox", { name: "Message" })).toHaveValue("half a thought");
  });

  it("counts live messages in other rooms as unread", async () => {
    const api = stubApi({
      rooms: async () => [
        room("festival"),
        room("camp", { name: "Camp", last_activity: 5 }),
      ],
    });
    renderApp(api);
    const nav = await screen.findByRole("navigation");
    await within(nav).findByRole("button", { name: /Camp/ });
    act(() => api.emit({ event: "message", ...message({ room: "camp" }) }));
    expect(await within(nav).findByLabelText("1 unread")).toBeInTheDocument();
  });
});

describe("names and warnings", () => {
  it("marks the author of conflicting messages when the node proves it, and reads the people list again", async () => {
    const hi = message({ body: { type: "text", text: "meet at the gate" } });
    const api = stubApi({ history: async (r) => ({ messages: r === "festival" ? [hi] : [], next: null }) });
    renderApp(api);
    const log = await screen.findByRole("log");
    expect(await within(log).findByText("meet at the gate")).toBeInTheDocument();
    expect(within(log).queryByText("sent conflicting messages")).not.toBeInTheDocument();
    const peersRead = (api.peers as ReturnType<typeof vi.fn>).mock.calls.length;
    act(() => api.emit({ event: "equivocation", peer: ANA }));
    expect(await within(log).findByText("sent conflicting messages")).toHaveAttribute("title", expect.stringMatching(/two different messages/));
    await waitFor(() => expect((api.peers as ReturnType<typeof vi.fn>).mock.calls.length).toBeGreaterThan(peersRead));
  });

  it("tells two people with one name apart, and warns about the lookalike", async () => {
    const real = message({ body: { type: "text", text: "from the real Ana" } });
    const other = message({
      author: "c".repeat(64),
      sender: { name: "Ana", short_fingerprint: "9C1D", verified: false, name_clash: true, equivocated: false },
      body: { type: "text", text: "send me your code" },
    });
    renderApp(stubApi({ history: async (r) => ({ messages: r === "festival" ? [real, other] : [], next: null }) }));
    const log = await screen.findByRole("log");
    expect(await within(log).findByRole("button", { name: "Ana fingerprint 3F2A" })).toBeInTheDocument();
    expect(within(log).getByRole("button", { name: "Ana fingerprint 9C1D looks like another name" })).toBeInTheDocument();
  });

  it("adds refusals the node reports to the status bar", async () => {
    const api = renderApp();
    // The counters live on the status: wait for it.
    await screen.findByText("P2P active");
    act(() => api.emit({ event: "rejected", peer: ANA, code: "envelope_bad_sig", count: 12 }));
    expect(await screen.findByText(/12 refused/)).toBeInTheDocument();
  });
});

describe("reads", () => {
  it("moves a room's read mark when it is opened with unread messages", async () => {
    const a = message({ room: "camp" }), b = message({ room: "camp" });
    const api = stubApi({
      rooms: async () => [room("festival"), room("camp", { name: "Camp", unread: 2, last_activity: 5 })],
      history: async (r) => ({ messages: r === "camp" ? [a, b] : [], next: null }),
    });
    renderApp(api);
    const user = userEvent.setup();
    await user.click(await within(await screen.findByRole("navigation")).findByRole("button", { name: /Camp/ }));
    await waitFor(() => expect(api.markRead).toHaveBeenCalledWith("camp", [a.id, b.id]));
  });

  it("sends read receipts for a DM conversation once, also across restarts", async () => {
    const fromAna = message({ room: "dm", body: { type: "direct", to: ME, text: "psst" } });
    const mine = message({ room: "dm", author: ME, mine: true, body: { type: "direct", to: ANA, text: "yes?" }, delivery: dl({ state: "delivered" }) });
    const make = () =>
      stubApi({
        history: async (r) => ({ messages: r === "dm" ? [fromAna, mine] : [], next: null }),
        dmHistory: async () => ({ messages: [fromAna, mine], next: null }),
      });
    const api = make();
    renderApp(api);
    const user = userEvent.setup();
    await user.click(await within(await screen.findByRole("navigation")).findByRole("button", { name: /Ana/ }));
    expect(await screen.findByText("psst")).toBeInTheDocument();
    await waitFor(() => expect(api.markRead).toHaveBeenCalledWith("dm", [fromAna.id]));
    expect(api.markRead).toHaveBeenCalledTimes(1);

    cleanup();
    const again = make();
    renderApp(again);
    await userEvent.setup().click(await within(await screen.findByRole("navigation")).findByRole("button", { name: /Ana/ }));
    expect(await screen.findByText("psst")).toBeInTheDocument();
    expect(again.markRead).not.toHaveBeenCalled();
  });
});

describe("people and verification", () => {
  it("refuses what is not a code, and keeps what was pasted", async () => {
    const api = renderApp();
    const user = userEvent.setup();
    await user.click(await screen.findByRole("button", { name: /People nearby/ }));
    await user.click(screen.getByRole("button", { name: "Verify" }));
    expect(screen.getByRole("alert")).toHaveTextContent(/Paste the code/);
    await user.type(screen.getByLabelText("Their code"), "nonsense");
    await user.click(screen.getByRole("button", { name: "Verify" }));
    expect(screen.getByRole("alert")).toHaveTextContent("That is not a Festival Chat code");
    expect(api.verify).not.toHaveBeenCalled();
    expect(screen.getByLabelText("Their code")).toHaveValue("nonsense");
  });

  it("shows the node's refusal of a well-formed code (e.g. your own)", async () => {
    const api = renderApp(
      stubApi({
        verify: async () => {
          throw { code: "own_code", message: "that is your own code" };
        },
      }),
    );
    const user = userEvent.setup();
    await user.click(await screen.findByRole("button", { name: /People nearby/ }));
    await user.type(screen.getByLabelText("Their code"), `festival:${ME}`);
    await user.click(screen.getByRole("button", { name: "Verify" }));
    expect(await screen.findByRole("alert")).toHaveTextContent("Could not verify: that is your own code");
    expect(screen.getByLabelText("Their code")).toHaveValue(`festival:${ME}`);
    void api;
  });

  it("marks a verified person and shows how they are reached", async () => {
    const ana = peer({ fingerprint: "1111-2222-3333-4444" });
    renderApp(stubApi({ peers: async () => [ana], verify: async () => ({ ...ana, verified: true }) }));
    const user = userEvent.setup();
    await user.click(await screen.findByRole("button", { name: /People nearby/ }));
    const people = screen.getByRole("complementary", { name: "People nearby" });
    expect(await within(people).findByText("LAN direct")).toBeInTheDocument();
    expect(within(people).getByText(/Not verified/)).toBeInTheDocument();
    expect(within(people).getByText("1111")).toBeInTheDocument();
    expect(within(people).queryByRole("img", { name: "Verified in person" })).not.toBeInTheDocument();
    await user.type(screen.getByLabelText("Their code"), `festival:${ANA}`);
    await user.click(screen.getByRole("button", { name: "Verify" }));
    expect(await within(people).findByRole("status")).toHaveTextContent("Ana is verified.");
    const list = within(people).getByRole("list");
    expect(within(list).getByRole("img", { name: "Verified in person" })).toBeInTheDocument();
    expect(within(list).queryByText("1111")).not.toBeInTheDocument();
  });
});

describe("settings", () => {
  it("refuses a festival id that does not parse, without calling the node", async () => {
    const api = renderApp();
    const user = userEvent.setup();
    await user.click(await screen.findByRole("button", { name: "Settings" }));
    const fest = screen.getByLabelText("Festival id");
    await user.clear(fest);
    await user.type(fest, "My Fest!");
    await user.click(screen.getByRole("button", { name: "Save" }));
    expect(screen.getByText(/Use only a-z, 0-9/)).toBeInTheDocument();
    expect(api.saveSettings).not.toHaveBeenCalled();
    expect(fest).toHaveValue("My Fest!");
  });

  it("shows the node's refusal and keeps the form", async () => {
    const api = renderApp(
      stubApi({
        saveSettings: async () => {
          throw { code: "invalid_relay_url", message: "relay unreachable" };
        },
      }),
    );
    const user = userEvent.setup();
    await user.click(await screen.findByRole("button", { name: "Settings" }));
    await user.type(screen.getByLabelText("Relay URL"), "ws://127.0.0.1:9");
    await user.click(screen.getByRole("button", { name: "Save" }));
    expect(await screen.findByRole("alert")).toHaveTextContent("Not saved: relay unreachable");
    expect(screen.getByLabelText("Relay URL")).toHaveValue("ws://127.0.0.1:9");
    expect(screen.getByLabelText("Relay URL")).toHaveAccessibleDescription("relay unreachable");
    expect(screen.getByLabelText("Relay URL")).toHaveAttribute("aria-invalid", "true");
    void api;
  });
});

describe("mentions, muting and blocking", () => {
  it("highlights a mention of me and completes names after @ with the keyboard", async () => {
    const theirs = message({ body: { type: "text", text: "@mia meet at the gate" } });
    const api = stubApi({
      history: async (r) => ({ messages: r === "festival" ? [theirs] : [], next: null }),
      peers: vi.fn(async () => [peer({ peer: ANA, name: "Ana" }), peer({ peer: "c".repeat(64), name: "Anton" })]),
    });
    renderApp(api);
    const mark = await screen.findByText("@mia");
    expect(mark.tagName).toBe("MARK");
    expect(mark).toHaveClass("mention", "of-me");
    expect(mark.closest("li")).toHaveClass("mentioned");

    const user = userEvent.setup();
    const box = screen.getByRole("textbox", { name: "Message" });
    await waitFor(() => expect(api.peers).toHaveBeenCalled());
    await user.type(box, "hi @an");
    const list = await screen.findByRole("listbox", { name: "People to mention" });
    expect(within(list).getAllByRole("option").map((o) => o.textContent)).toEqual(["@Ana", "@Anton"]);
    await user.keyboard("{ArrowDown}{Enter}");
    expect(box).toHaveValue("hi @Anton ");
    expect(screen.queryByRole("listbox")).not.toBeInTheDocument();
    expect(api.send).not.toHaveBeenCalled();
    // Escape closes the list and keeps the text.
    await user.type(box, "@a");
    await screen.findByRole("listbox");
    await user.keyboard("{Escape}");
    expect(screen.queryByRole("listbox")).not.toBeInTheDocument();
    expect(box).toHaveValue("hi @Anton @a");
  });

  it("mutes the open room and says so; blocking a person hides what they wrote and Settings undoes it", async () => {
    const theirs = message({ room: "dm", author: ANA, body: { type: "direct", to: ME, text: "buy my tokens" } });
    let blocked = false;
    const api = stubApi({
      rooms: async () => [room("festival", { muted: false })],
      peers: async () => [peer({ peer: ANA, name: "Ana", blocked })],
      dmHistory: async () => ({ messages: blocked ? [] : [theirs], next: null }),
      history: async (r) => ({ messages: r === "dm" && !blocked ? [theirs] : [], next: null }),
      block: vi.fn(async (_p: string, on: boolean) => {
        blocked = on;
      }),
      peopleChoices: vi.fn(async () =>
        blocked ? [{ peer: ANA, sender: { name: "Ana", short_fingerprint: "3F2A", verified: false, name_clash: false, equivocated: false }, muted: false, blocked: true, since: 1 }] : [],
      ),
    });
    renderApp(api);
    const user = userEvent.setup();
    await user.click(await screen.findByRole("button", { name: "Mute Festival" }));
    expect(api.mute).toHaveBeenCalledWith("festival", true);
    await waitFor(() => expect(api.viewing).toHaveBeenCalledWith("festival"));

    // The DM conversation with Ana, then block her.
    await user.click(await screen.findByRole("button", { name: /Ana/, description: undefined }));
    expect((await screen.findAllByText("buy my tokens")).length).toBeGreaterThan(0);
    await waitFor(() => expect(api.viewing).toHaveBeenLastCalledWith(`dm:${ANA}`));
    await user.click(screen.getByRole("button", { name: /^Block Ana/ }));
    const confirm = screen.getByRole("alertdialog");
    await user.click(within(confirm).getByRole("button", { name: "Block" }));
    expect(api.block).toHaveBeenCalledWith(ANA, true);
    await waitFor(() => expect(screen.queryByText("buy my tokens")).not.toBeInTheDocument());

    // Settings lists her; Unblock undoes it.
    await user.click(screen.getByRole("button", { name: /Settings/ }));
    const list = await screen.findByRole("region", { name: "Muted and blocked people" });
    await user.click(await within(list).findByRole("button", { name: "Unblock" }));
    expect(api.block).toHaveBeenLastCalledWith(ANA, false);
    expect(await within(list).findByText(/Nobody/)).toBeInTheDocument();
    // What she wrote was kept: it is read again and shown.
    expect((await screen.findAllByText("buy my tokens")).length).toBeGreaterThan(0);
  });
});

describe("search", () => {
  it("finds messages as the words are typed and opens one in its conversation, paging back to it", async () => {
    const target = message({ room: "main-stage", body: { type: "text", text: "Fireworks at the lake" }, created_at: 1_000 });
    const newer = Array.from({ length: 3 }, (_, i) => message({ room: "main-stage", body: { type: "text", text: `later ${i}` }, created_at: 2_000 + i }));
    const api = stubApi({
      rooms: async () => [room("festival"), room("main-stage", { name: "Main Stage" })],
      search: vi.fn(async () => ({ messages: [target], pending: 0 })),
      // The newest page first; the found message is on the second one.
      history: vi.fn(async (r: string, before: unknown) =>
        r !== "main-stage" ? { messages: [], next: null } : before === null ? { messages: newer, next: { created_at: 2_000, author: ANA, seq: 1 } } : { messages: [target], next: null },
      ),
    });
    renderApp(api);
    const user = userEvent.setup();
    await user.type(await screen.findByRole("searchbox", { name: "Search messages" }), "fire");
    const results = await screen.findByRole("region", { name: "Search results" });
    const hit = await within(results).findByRole("button", { name: /Main Stage/ });
    expect(within(hit).getByText("Fire").tagName).toBe("MARK");
    expect(api.search).toHaveBeenLastCalledWith("fire", 50);
    await user.click(hit);
    // Only the second page holds it: paged back until it is there, then it
    // is marked and focused.
    await waitFor(() => expect(document.querySelector(`li[data-id="${target.id}"]`)).toHaveClass("found"));
    expect(document.activeElement).toBe(document.querySelector(`li[data-id="${target.id}"]`));
  });

  it("says why a search was refused", async () => {
    const api = stubApi({ search: vi.fn(async () => Promise.reject({ code: "invalid_search", message: "search: type a word to search for" })) });
    renderApp(api);
    const user = userEvent.setup();
    await user.type(await screen.findByRole("searchbox", { name: "Search messages" }), "--");
    expect(await screen.findByText(/type a word to search for/)).toBeInTheDocument();
  });
});
