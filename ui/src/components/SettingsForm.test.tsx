import { render, screen } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { describe, expect, it, vi } from "vitest";
import type { Settings } from "../model";
import { settings } from "../test/stubApi";
import { SettingsForm } from "./SettingsForm";

/** A relay's PeerId as its operator hands it out (an Ed25519 key, RFC 8032 test 1). */
const RELAY_ID = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";

function form(saved: Settings = settings, onSave = vi.fn(async (s: Settings) => s)) {
  render(<SettingsForm settings={saved} onSave={onSave} />);
  return { onSave, user: userEvent.setup(), field: () => screen.getByLabelText("Relay id") };
}

describe("settings form: relay id", () => {
  it("pins the relay id a person pastes, trimmed, and saves it with the rest", async () => {
    const { onSave, user, field } = form();
    expect(field()).toHaveValue("");
    await user.type(screen.getByLabelText("Relay URL"), "wss://relay.example");
    await user.click(field());
    await user.paste(`  ${RELAY_ID.toUpperCase()} `);
    await user.click(screen.getByRole("button", { name: "Save" }));
    expect(onSave).toHaveBeenCalledWith({ ...settings, relay_url: "wss://relay.example", relay_id: RELAY_ID.toUpperCase() });
    expect(await screen.findByRole("status")).toHaveTextContent("Saved.");
  });

  it("shows the saved pin, and clearing the field unpins", async () => {
    const { onSave, user, field } = form({ ...settings, relay_url: "wss://relay.example", relay_id: RELAY_ID });
    expect(field()).toHaveValue(RELAY_ID);
    await user.clear(field());
    await user.click(screen.getByRole("button", { name: "Save" }));
    expect(onSave).toHaveBeenCalledWith(expect.objectContaining({ relay_id: null }));
  });

  it("refuses what is not 64 hex digits without asking the node", async () => {
    const { onSave, user, field } = form();
    await user.type(field(), "relay.example");
    await user.click(screen.getByRole("button", { name: "Save" }));
    expect(onSave).not.toHaveBeenCalled();
    expect(field()).toHaveAttribute("aria-invalid", "true");
    expect(field()).toHaveAccessibleDescription(/64 characters of 0-9 and a-f/);
    expect(field()).toHaveValue("relay.example");
  });

  it("puts the node's invalid_relay_id under the field and keeps what was typed", async () => {
    const notAKey = "ab".repeat(32);
    const { user, field } = form(
      settings,
      vi.fn(async () => {
        throw { code: "invalid_relay_id", message: "Relay id is not a relay's id." };
      }),
    );
    await user.click(field());
    await user.paste(notAKey);
    await user.click(screen.getByRole("button", { name: "Save" }));
    expect(await screen.findByRole("alert")).toHaveTextContent("Not saved: Relay id is not a relay's id.");
    expect(field()).toHaveAccessibleDescription("Relay id is not a relay's id.");
    expect(field()).toHaveValue(notAKey);
  });
});
