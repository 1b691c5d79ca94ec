import { render, screen } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import type { Author } from "../model";
import { plainName } from "../logic/person";
import { PersonName, PersonWarnings } from "./PersonName";

const ana = (over: Partial<Author> = {}): Author => ({ name: "Ana", short_fingerprint: "3F2A", verified: false, name_clash: false, equivocated: false, ...over });

function shown(author: Author | undefined, props: { me?: boolean; compact?: boolean; peer?: string } = {}) {
  const { container } = render(
    <button type="button">
      <PersonName author={author} {...props} />
    </button>,
  );
  return { name: () => screen.getByRole("button").textContent, container };
}

describe("a person's name as shown", () => {
  it("a verified person gets the app's mark, an icon and not text, and no fingerprint", () => {
    const { container } = shown(ana({ verified: true }));
    const mark = screen.getByRole("img", { name: "Verified in person" });
    expect(mark.querySelector("svg")).not.toBeNull();
    expect(mark).toHaveAttribute("title", expect.stringMatching(/compared .* code face to face/));
    // No character a person could type in a name stands for the mark.
    expect(mark.textContent).toBe("");
    expect(screen.getByRole("button")).toHaveAccessibleName("Ana Verified in person");
    expect(container.querySelector(".pn-fp")).toBeNull();
  });

  it("an unverified person gets the short fingerprint as a monospace chip beside the name", () => {
    const { container } = shown(ana());
    expect(screen.getByRole("button")).toHaveAccessibleName("Ana fingerprint 3F2A");
    const chip = container.querySelector(".pn-fp");
    expect(chip).toHaveTextContent("3F2A");
    expect(chip).toHaveAttribute("title", expect.stringMatching(/fingerprint/));
    expect(screen.queryByRole("img", { name: "Verified in person" })).not.toBeInTheDocument();
  });

  it("two people with one name are told apart by their fingerprints", () => {
    render(
      <ul>
        <li>
          <PersonName author={ana()} />
        </li>
        <li>
          <PersonName author={ana({ short_fingerprint: "9C1D" })} />
        </li>
      </ul>,
    );
    expect(screen.getAllByRole("listitem").map((li) => li.textContent)).toEqual(["Ana fingerprint 3F2A", "Ana fingerprint 9C1D"]);
  });

  it("a lookalike name carries a warning that explains itself", () => {
    shown(ana({ name_clash: true }));
    const warning = screen.getByText("looks like another name");
    expect(warning.closest(".pn-warn")).toHaveAttribute("title", expect.stringMatching(/looks like yours, a verified contact’s or another person’s.*compare fingerprints/));
    expect(screen.getByRole("button")).toHaveAccessibleName("Ana fingerprint 3F2A looks like another name");
  });

  it("an equivocating device carries a warning that explains itself", () => {
    shown(ana({ equivocated: true, verified: true }));
    const warning = screen.getByText("sent conflicting messages");
    expect(warning.closest(".pn-warn")).toHaveAttribute("title", expect.stringMatching(/two different messages for one place in its history/));
    // Verification does not hide it.
    expect(screen.getByRole("img", { name: "Verified in person" })).toBeInTheDocument();
  });

  it("compact rows keep the warning's words for screen readers and the tooltip", () => {
    shown(ana({ name_clash: true, equivocated: true }), { compact: true });
    expect(screen.getByRole("button")).toHaveAccessibleName("Ana fingerprint 3F2A looks like another name sent conflicting messages");
  });

  it("our own messages show as You", () => {
    shown(undefined, { me: true });
    expect(screen.getByRole("button")).toHaveAccessibleName("You");
  });

  it("someone without a name is Unnamed, still with a fingerprint", () => {
    shown(ana({ name: null }));
    expect(screen.getByRole("button")).toHaveAccessibleName("Unnamed fingerprint 3F2A");
  });

  it("someone not known yet shows their shortened key, not an invented name", () => {
    shown(undefined, { peer: "ab".repeat(32) });
    expect(screen.getByRole("button")).toHaveAccessibleName("abab…abab");
  });

  it("the name is its own element: a long one is cut, the marks stay", () => {
    const { container } = shown(ana({ name: "A very long festival name that goes on and on", name_clash: true }));
    const parts = [...(container.querySelector(".pn")?.children ?? [])].map((el) => el.className);
    expect(parts).toEqual(["pn-name", "pn-fp", "pn-warn"]);
  });
});

describe("the warnings in full", () => {
  it("say nothing for someone with nothing to warn about", () => {
    const { container } = render(<PersonWarnings author={ana()} />);
    expect(container).toBeEmptyDOMElement();
  });

  it("explain a lookalike name with the fingerprint to compare, and conflicting messages", () => {
    render(<PersonWarnings author={ana({ name_clash: true, equivocated: true })} fingerprint="3F2A-91C4-7B0E-55D1" />);
    const note = screen.getByRole("note");
    expect(note).toHaveTextContent(/This name looks like another name\..*compare fingerprints \(theirs is 3F2A-91C4-7B0E-55D1\)/);
    expect(note).toHaveTextContent(/This device sent conflicting messages\..*may not be what others see/);
  });
});

describe("a name as plain text", () => {
  it("carries the same marks in words", () => {
    expect(plainName(ana())).toBe("Ana · 3F2A");
    expect(plainName(ana({ verified: true }))).toBe("Ana, verified in person");
    expect(plainName(ana({ name_clash: true, equivocated: true }))).toBe("Ana · 3F2A, looks like another name, sent conflicting messages");
    expect(plainName(undefined, "ab".repeat(32))).toBe("abab…abab");
  });
});
