import { act, screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { beforeEach, describe, expect, it, vi } from "vitest";
import { ApiError } from "../api";
import { ANA, GROUP, ME, group, message, peer, stubApi } from "../test/stubApi";
import { renderApp } from "../test/renderApp";

beforeEach(() => localStorage.clear());


const said = (text: string, over = {}) => message({ room: "dm", body: { type: "group", group: GROUP, name: "Camp crew", text }, ...over });

describe("private groups", () => {
  it("are made from the people nearby, open at once, and take messages", async () => {
    const api = stubApi({ peers: async () => [peer({ peer: ANA, name: "Ana" })] });
    renderApp(api);
    const user = userEvent.setup();
    await user.click(await screen.findByRole("button", { name: "New private group" }));
    const dialog = screen.getByRole("dialog", { name: "New private group" });
    // No name: refused in place.
    await user.click(within(dialog).getByRole("checkbox"));
    await user.click(within(dialog).getByRole("button", { name: "Make the group" }));
    expect(within(dialog).getByRole("alert")).toHaveTextContent("Give the group a name.");
    await user.type(within(dialog).getByLabelText("Group name"), "Camp crew");
    await user.click(within(dialog).getByRole("button", { name: "Make the group" }));
    expect(api.createGroup).toHaveBeenCalledWith("Camp crew", [ANA]);
    expect(await screen.findByRole("heading", { name: "Camp crew" })).toBeInTheDocument();
    expect(screen.getByText(/Sealed to its 2 members/)).toBeInTheDocument();
    await user.type(screen.getByRole("textbox", { name: "Message" }), "tent is up{Enter}");
    await waitFor(() => expect(api.sendGroup).toHaveBeenCalledWith(GROUP, "tent is up"));
    expect(await screen.findByText("tent is up")).toBeInTheDocument();
  });

  it("show their messages and changes, and a node's refusal in place", async () => {
    const made = message({ room: "dm", author: ANA, body: { type: "group_members", group: GROUP, name: "Camp crew", members: [ME, ANA] } });
    const lamp = said("bring the lamp");
    const api = stubApi({
      groups: async () => [group()],
      groupHistory: async () => ({ messages: [made, lamp], next: null }),
      createGroup: vi.fn(async () => {
        throw new ApiError("invalid_group_members", "a group has 1 to 32 members, no one twice");
      }),
    });
    renderApp(api);
    const user = userEvent.setup();
    await user.click(await within(await screen.findByRole("navigation")).findByRole("button", { name: /Camp crew/ }));
    expect(await screen.findByText("bring the lamp")).toBeInTheDocument();
    expect(screen.getByText(/made “Camp crew” with 2 people/)).toBeInTheDocument();
    // Read: the receipts go sealed to each author, from the mailbox.
    await waitFor(() => expect(api.markRead).toHaveBeenCalledWith("dm", [made.id, lamp.id]));
    // A live message of the group lands in it.
    act(() => api.emit({ event: "message", ...said("on my way") }));
    expect(await screen.findByText("on my way")).toBeInTheDocument();
    // Making another that the node refuses: its words, in the dialog.
    await user.click(screen.getByRole("button", { name: "New private group" }));
    const dialog = screen.getByRole("dialog", { name: "New private group" });
    await user.type(within(dialog).getByLabelText("Group name"), "Too many");
    await user.type(within(dialog).getByLabelText("Or their contact codes"), `festival:${"c".repeat(64)}`);
    await user.click(within(dialog).getByRole("button", { name: "Make the group" }));
    expect(await within(dialog).findByRole("alert")).toHaveTextContent("a group has 1 to 32 members");
  });

  it("say who was added, and only what the node showed", async () => {
    const added = message({ room: "dm", author: ANA, body: { type: "group_added", group: GROUP, name: "Camp crew", added: [ME] } });
    const api = stubApi({ groups: async () => [group()], groupHistory: async () => ({ messages: [added], next: null }) });
    renderApp(api);
    await userEvent.setup().click(await within(await screen.findByRole("navigation")).findByRole("button", { name: /Camp crew/ }));
    expect(await screen.findByText(/added 1 person/)).toBeInTheDocument();
  });

  it("can be muted from their conversation", async () => {
    const api = stubApi({ groups: vi.fn(async () => [group()]), groupHistory: async () => ({ messages: [said("hi")], next: null }) });
    renderApp(api);
    const user = userEvent.setup();
    await user.click(await within(await screen.findByRole("navigation")).findByRole("button", { name: /Camp crew/ }));
    await screen.findByText("hi");
    vi.mocked(api.groups).mockResolvedValue([group({ muted: true })]);
    await user.click(screen.getByRole("button", { name: /^Mute / }));
    expect(api.mute).toHaveBeenCalledWith(`group:${GROUP}`, true);
    expect(await within(screen.getByRole("navigation")).findByRole("img", { name: "muted" })).toBeInTheDocument();
  });

  it("can be left, after a confirmation; then they are read-only", async () => {
    const api = stubApi({ groups: async () => [group()], groupHistory: async () => ({ messages: [said("hi all")], next: null }) });
    renderApp(api);
    const user = userEvent.setup();
    await user.click(await within(await screen.findByRole("navigation")).findByRole("button", { name: /Camp crew/ }));
    await screen.findByText("hi all");
    await user.click(screen.getByRole("button", { name: "Leave Camp crew" }));
    const confirm = screen.getByRole("alertdialog", { name: "Leave Camp crew?" });
    // The safe answer has the focus.
    expect(within(confirm).getByRole("button", { name: "Cancel" })).toHaveFocus();
    await user.click(within(confirm).getByRole("button", { name: "Leave" }));
    expect(api.leaveGroup).toHaveBeenCalledWith(GROUP);
    expect(await screen.findByText(/You left this group/)).toBeInTheDocument();
    expect(screen.queryByRole("textbox", { name: "Message" })).not.toBeInTheDocument();
  });
});
