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

describe("settings form: messages on this device", () => {
  const storage = () => screen.getByLabelText("Storage for messages (MB)");
  const lifetime = () => screen.getByLabelText("Keep messages for (hours)");

  it("saves the storage and the festival's length as numbers, and says the length in days", async () => {
    const { onSave, user } = form();
    expect(storage()).toHaveValue("");
    expect(storage()).toHaveAccessibleDescription(/Empty: 512 MB/);
    expect(lifetime()).toHaveAccessibleDescription(/Now: a week \(168 hours\)/);
    await user.type(storage(), "2048");
    await user.type(lifetime(), "96");
    expect(lifetime()).toHaveAccessibleDescription(/festival’s length: older messages are deleted and no longer passed on\. Now: 4 days\./);
    await user.click(screen.getByRole("button", { name: "Save" }));
    expect(onSave).toHaveBeenCalledWith({ ...settings, storage_mb: 2048, message_lifetime_hours: 96 });
  });

  it("shows the saved values, and empty fields go back to the defaults", async () => {
    const { onSave, user } = form({ ...settings, storage_mb: 1024, message_lifetime_hours: 72 });
    expect(storage()).toHaveValue("1024");
    expect(lifetime()).toHaveValue("72");
    await user.clear(storage());
    await user.clear(lifetime());
    await user.click(screen.getByRole("button", { name: "Save" }));
    expect(onSave).toHaveBeenCalledWith(expect.objectContaining({ storage_mb: null, message_lifetime_hours: null }));
  });

  it("refuses what is out of range without asking the node, and keeps what was typed", async () => {
    const { onSave, user } = form();
    await user.type(storage(), "32");
    await user.type(lifetime(), "9000");
    await user.click(screen.getByRole("button", { name: "Save" }));
    expect(onSave).not.toHaveBeenCalled();
    expect(storage()).toHaveAttribute("aria-invalid", "true");
    expect(storage()).toHaveAccessibleDescription(/from 64 to 65536/);
    expect(lifetime()).toHaveAttribute("aria-invalid", "true");
    expect(lifetime()).toHaveAccessibleDescription(/1 to 8784 hours/);
    expect(storage()).toHaveValue("32");
    await user.clear(storage());
    await user.type(storage(), "1.5");
    expect(storage()).toHaveAccessibleDescription(/a whole number/);
  });

  it("puts the node's invalid_storage next to the field that was changed", async () => {
    const { user } = form(
      settings,
      vi.fn(async () => {
        throw { code: "invalid_storage", message: "Messages must be kept 1 to 8784 hours." };
      }),
    );
    await user.type(lifetime(), "48");
    await user.click(screen.getByRole("button", { name: "Save" }));
    expect(await screen.findByRole("alert")).toHaveTextContent("Not saved: Messages must be kept 1 to 8784 hours.");
    expect(lifetime()).toHaveAttribute("aria-invalid", "true");
    expect(lifetime()).toHaveAccessibleDescription(/Messages must be kept 1 to 8784 hours\./);
    expect(storage()).not.toHaveAttribute("aria-invalid");
    expect(lifetime()).toHaveValue("48");
  });
});

describe("settings form: name rules", () => {
  const name = () => screen.getByLabelText("Display name");

  it("refuses a name that claims to be verified, in the app's words, before asking the node", async () => {
    const { onSave, user } = form();
    await user.clear(name());
    await user.type(name(), "Mia ✓");
    await user.click(screen.getByRole("button", { name: "Save" }));
    expect(onSave).not.toHaveBeenCalled();
    expect(name()).toHaveAccessibleDescription("Names cannot claim to be verified or official: the app shows who is verified.");
  });

  it("refuses double spaces and invisible characters", async () => {
    const { onSave, user } = form();
    await user.clear(name());
    await user.type(name(), "Mia  Rose");
    await user.click(screen.getByRole("button", { name: "Save" }));
    expect(name()).toHaveAccessibleDescription("Use single spaces between the words of your name.");
    await user.clear(name());
    await user.click(name());
    await user.paste("Mi\u200Ba");
    expect(name()).toHaveAccessibleDescription("Names cannot hold invisible or direction-changing characters, tabs or line breaks.");
    expect(onSave).not.toHaveBeenCalled();
  });

  it("trims spaces at the ends rather than refusing them, as the app does", async () => {
    const { onSave, user } = form();
    await user.clear(name());
    await user.type(name(), " Mia ");
    await user.click(screen.getByRole("button", { name: "Save" }));
    expect(onSave).toHaveBeenCalledWith(expect.objectContaining({ name: "Mia" }));
  });

  it("shows the node's invalid_name under the name", async () => {
    const { user } = form(
      settings,
      vi.fn(async () => {
        throw { code: "invalid_name", message: "Names cannot claim to be verified or official: the app shows who is verified." };
      }),
    );
    await user.clear(name());
    await user.type(name(), "Vеrified"); // a Cyrillic е: the node's check folds it, this one does not
    await user.click(screen.getByRole("button", { name: "Save" }));
    expect(await screen.findByRole("alert")).toHaveTextContent("Not saved: Names cannot claim");
    expect(name()).toHaveAttribute("aria-invalid", "true");
    expect(name()).toHaveAccessibleDescription(/the app shows who is verified/);
  });
});

describe("settings form: organiser key", () => {
  it("saves the key a person pastes, and refuses what is not one without asking the node", async () => {
    const onSave = vi.fn(async (s: Settings) => s);
    render(<SettingsForm settings={settings} onSave={onSave} />);
    const user = userEvent.setup();
    const field = screen.getByLabelText("Organiser key");
    await user.type(field, "gate crew");
    await user.click(screen.getByRole("button", { name: "Save" }));
    expect(onSave).not.toHaveBeenCalled();
    expect(field).toHaveAttribute("aria-invalid", "true");
    expect(field).toHaveAccessibleDescription(/64 characters of 0-9 and a-f/);
    await user.clear(field);
    await user.click(field);
    await user.paste(` ${RELAY_ID} `);
    await user.click(screen.getByRole("button", { name: "Save" }));
    expect(onSave).toHaveBeenCalledWith({ ...settings, organiser: RELAY_ID });
  });
});
