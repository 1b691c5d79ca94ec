import { act, cleanup, fireEvent, screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { ApiError, photoBody as wireBody } from "../api";
import { checkPicture, MAX_PICTURE_BYTES, nextPhotoStall, PHOTO_STALL_MS } from "../logic/photo";
import { bodyText } from "../logic/meetup";
import type { MessageView } from "../model";
import { message, photoBody, stubApi, THUMB } from "../test/stubApi";
import { renderApp } from "../test/renderApp";
import { forgetPhotos } from "./PhotoMessage";

function photo(over: Parameters<typeof photoBody>[0] = {}): MessageView {
  return message({ body: photoBody({ caption: "sunset from the hill", ...over }) });
}

function png(name = "sunset.png", size = 2048): File {
  return new File([new Uint8Array(size).fill(7)], name, { type: "image/png" });
}

// jsdom's Blob has no arrayBuffer(): read it as browsers do.
if (!("arrayBuffer" in Blob.prototype)) {
  Object.defineProperty(Blob.prototype, "arrayBuffer", {
    value(this: Blob) {
      return new Promise<ArrayBuffer>((done) => {
        const r = new FileReader();
        r.onload = () => done(r.result as ArrayBuffer);
        r.readAsArrayBuffer(this);
      });
    },
  });
}

beforeEach(() => {
  localStorage.clear();
  forgetPhotos();
  // jsdom has no object URLs: number them.
  let n = 0;
  URL.createObjectURL = vi.fn(() => `blob:photo-${++n}`);
  URL.revokeObjectURL = vi.fn();
});
afterEach(() => cleanup());

describe("photos in a conversation", () => {
  it("shows the thumbnail while pieces are coming, then the photo once the node says it is whole", async () => {
    const coming = photo({ complete: false });
    const api = stubApi({ history: async () => ({ messages: [coming], next: null }) });
    renderApp(api);
    const open = await screen.findByRole("button", { name: /Photo: sunset from the hill\. Still coming/ });
    const img = open.querySelector("img")!;
    expect(img.getAttribute("src")).toBe(THUMB);
    expect(within(open).getByRole("status")).toHaveTextContent("Coming…");
    expect(api.photo).not.toHaveBeenCalled();
    act(() => api.emit({ event: "photo_ready", ...coming, body: photoBody({ caption: "sunset from the hill" }) }));
    await waitFor(() => expect(api.photo).toHaveBeenCalledWith(coming.id));
    const whole = await screen.findByRole("button", { name: /Open it full size/ });
    await waitFor(() => expect(whole.querySelector("img")!.getAttribute("src")).toMatch(/^blob:photo-/));
    expect(screen.getByText("sunset from the hill")).toBeInTheDocument();
  });

  it("a photo whose pieces stopped coming says so, one still coming does not", async () => {
    const now = Date.now();
    const stuck = { ...photo({ complete: false, caption: "lost on the way" }), received_at: now - 11 * 60_000, created_at: now - 11 * 60_000 };
    const fresh = { ...photo({ complete: false, caption: "on its way" }), received_at: now - 60_000, created_at: now - 60_000 };
    const api = stubApi({ history: async () => ({ messages: [stuck, fresh], next: null }) });
    renderApp(api);
    const lost = await screen.findByRole("button", { name: /Photo: lost on the way\. Not all of it came/ });
    expect(within(lost).getByRole("status")).toHaveTextContent("Not all of it came");
    const coming = screen.getByRole("button", { name: /Photo: on its way\. Still coming/ });
    expect(within(coming).getByRole("status")).toHaveTextContent("Coming…");
    expect(api.photo).not.toHaveBeenCalled();
  });

  it("opens full size in a dialog, closed by Escape with the focus back on the photo", async () => {
    const api = stubApi({ history: async () => ({ messages: [photo()], next: null }) });
    renderApp(api);
    const open = await screen.findByRole("button", { name: /Open it full size/ });
    await waitFor(() => expect(open.querySelector("img")!.getAttribute("src")).toMatch(/^blob:/));
    const user = userEvent.setup();
    await user.click(open);
    const dialog = await screen.findByRole("dialog", { name: "sunset from the hill" });
    expect(within(dialog).getByRole("img", { name: "sunset from the hill" }).getAttribute("src")).toMatch(/^blob:/);
    expect(within(dialog).getByText(/1600 × 1200 · 176 KB/)).toBeInTheDocument();
    await user.keyboard("{Escape}");
    await waitFor(() => expect(screen.queryByRole("dialog")).not.toBeInTheDocument());
    await waitFor(() => expect(open).toHaveFocus());
  });

  it("a photo that cannot be put together says so and keeps its thumbnail", async () => {
    const api = stubApi({
      history: async () => ({ messages: [photo()], next: null }),
      photo: vi.fn(async () => {
        throw new ApiError("photo_damaged", "the photo's pieces do not fit together");
      }),
    });
    renderApp(api);
    expect(await screen.findByRole("alert")).toHaveTextContent("The photo could not be opened: the photo's pieces do not fit together");
    expect(screen.getByRole("button", { name: /Photo: sunset/ }).querySelector("img")!.getAttribute("src")).toBe(THUMB);
  });

  it("a photo shown again (back to its room) is not fetched again", async () => {
    const shot = photo();
    const api = stubApi({
      rooms: async () => [
        { id: "festival", name: "festival", unread: 0, last_activity: Date.now(), joined_at: 1, muted: false },
        { id: "camp-b12", name: "Camp B12", unread: 0, last_activity: Date.now(), joined_at: 2, muted: false },
      ],
      history: async (room: string) => ({ messages: room === "festival" ? [shot] : [], next: null }),
    });
    renderApp(api);
    const user = userEvent.setup();
    await waitFor(() => expect(screen.getByRole("button", { name: /Open it full size/ }).querySelector("img")!.getAttribute("src")).toMatch(/^blob:/));
    await user.click(screen.getByRole("button", { name: /Camp B12/ }));
    await waitFor(() => expect(screen.queryByRole("button", { name: /Open it full size/ })).not.toBeInTheDocument());
    await user.click(screen.getByRole("button", { name: /Festival/ }));
    await waitFor(() => expect(screen.getByRole("button", { name: /Open it full size/ }).querySelector("img")!.getAttribute("src")).toMatch(/^blob:/));
    expect(api.photo).toHaveBeenCalledTimes(1);
    expect(URL.revokeObjectURL).not.toHaveBeenCalled();
  });

  it("an update names only photos shown, and only photos", async () => {
    const api = stubApi({ history: async () => ({ messages: [photo()], next: null }) });
    renderApp(api);
    await screen.findByRole("button", { name: /Photo: sunset/ });
    act(() => api.emit({ event: "photo_ready", ...photo({ caption: "never shown" }) }));
    const text = message({ body: { type: "text", text: "a text passed off as a photo" } });
    act(() => api.emit({ event: "photo_ready", ...text }));
    await act(async () => {});
    expect(screen.queryByText("never shown")).not.toBeInTheDocument();
    expect(screen.queryByText("a text passed off as a photo")).not.toBeInTheDocument();
  });
});

describe("sending a photo", () => {
  it("a picked picture waits above the box; Send sends it with the text as its caption, then both go", async () => {
    const api = stubApi();
    renderApp(api);
    const user = userEvent.setup();
    const box = await screen.findByRole("textbox", { name: "Message" });
    await user.upload(screen.getByTestId("photo-input"), png());
    expect(await screen.findByText(/Photo: sunset\.png/)).toBeInTheDocument();
    await user.type(box, "the view from camp");
    await user.click(screen.getByRole("button", { name: "Send the photo" }));
    await waitFor(() => expect(api.sendPhoto).toHaveBeenCalledTimes(1));
    const [room, bytes, caption] = vi.mocked(api.sendPhoto).mock.calls[0]!;
    expect([room, bytes.length, caption]).toEqual(["festival", 2048, "the view from camp"]);
    await waitFor(() => expect(screen.queryByText(/Photo: sunset\.png/)).not.toBeInTheDocument());
    expect(box).toHaveValue("");
    expect(api.send).not.toHaveBeenCalled();
  });

  it("a refused picture keeps the picture and the caption, with the node's reason", async () => {
    const api = stubApi({
      sendPhoto: vi.fn(async () => {
        throw new ApiError("not_a_photo", "That file cannot be sent as a photo: the file is not a picture.");
      }),
    });
    renderApp(api);
    const user = userEvent.setup();
    const box = await screen.findByRole("textbox", { name: "Message" });
    await user.upload(screen.getByTestId("photo-input"), png("broken.png"));
    await user.type(box, "hm");
    await user.keyboard("{Enter}");
    expect(await screen.findByRole("alert")).toHaveTextContent("Photo not sent: That file cannot be sent as a photo");
    expect(screen.getByText(/Photo: broken\.png/)).toBeInTheDocument();
    expect(box).toHaveValue("hm");
    // Removed: the box sends text again.
    await user.click(screen.getByRole("button", { name: "Remove the photo" }));
    expect(screen.queryByText(/Photo: broken\.png/)).not.toBeInTheDocument();
    expect(screen.getByRole("button", { name: "Send" })).toBeEnabled();
  });

  it("a file dropped on the conversation is picked; what is not a picture is refused before it is read", async () => {
    const api = stubApi();
    renderApp(api);
    const chat = await screen.findByRole("region", { name: "Festival" });
    const dropped = (file: File) => ({ dataTransfer: { types: ["Files"], files: [file], dropEffect: "none" } });
    fireEvent.dragOver(chat, dropped(png("dropped.png")));
    expect(chat).toHaveClass("dropping");
    // What is not a picture, dropped, is refused before it is read.
    fireEvent.drop(chat, dropped(new File(["%PDF"], "ticket.pdf", { type: "application/pdf" })));
    expect(await screen.findByRole("alert")).toHaveTextContent("That file is not a picture");
    expect(screen.queryByText(/Photo: ticket\.pdf/)).not.toBeInTheDocument();
    fireEvent.drop(chat, dropped(png("dropped.png")));
    expect(await screen.findByText(/Photo: dropped\.png/)).toBeInTheDocument();
    expect(screen.queryByRole("alert")).not.toBeInTheDocument();
    const user = userEvent.setup({ applyAccept: false });
    await user.upload(screen.getByTestId("photo-input"), new File(["%PDF"], "ticket.pdf", { type: "application/pdf" }));
    expect(await screen.findByRole("alert")).toHaveTextContent("That file is not a picture");
    expect(api.sendPhoto).not.toHaveBeenCalled();
  });

  it("kinds and sizes the node cannot take are said before anything is read", () => {
    expect(checkPicture({ type: "image/heic", size: 10 })).toMatch(/cannot be sent: JPEG, PNG, WebP or GIF can/);
    expect(checkPicture({ type: "image/jpeg", size: MAX_PICTURE_BYTES + 1 })).toMatch(/too big/);
    expect(checkPicture({ type: "image/webp", size: 10 })).toBeNull();
  });
});

describe("the wire and the words", () => {
  it("send_photo's body is a length, the JSON header, then the picture", () => {
    const body = wireBody("camp-b12", "🎪 gate", new Uint8Array([0xff, 0xd8, 0xff]));
    const len = new DataView(body.buffer).getUint32(0, true);
    const header = JSON.parse(new TextDecoder().decode(body.slice(4, 4 + len)));
    expect(header).toEqual({ room: "camp-b12", caption: "🎪 gate" });
    expect([...body.slice(4 + len)]).toEqual([0xff, 0xd8, 0xff]);
  });

  it("the list is re-drawn when the next photo's pieces stop coming", () => {
    const at = 1_000_000;
    const coming = { ...photo({ complete: false }), received_at: at };
    const later = { ...photo({ complete: false }), received_at: at + 5_000 };
    expect(nextPhotoStall([photo(), later, coming], at + 1)).toBe(at + PHOTO_STALL_MS);
    expect(nextPhotoStall([coming], at + PHOTO_STALL_MS + 1)).toBeNull();
    expect(nextPhotoStall([photo()], at)).toBeNull();
  });

  it("a photo's preview text is its caption", () => {
    expect(bodyText(photoBody({ caption: "at the lake" }))).toBe("Photo: at the lake");
    expect(bodyText(photoBody({ caption: "" }))).toBe("Photo");
  });
});
