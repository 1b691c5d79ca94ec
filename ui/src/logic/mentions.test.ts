import { describe, expect, it } from "vitest";
import { completeMention, mentionQuery, mentions, MAX_SUGGESTIONS, splitMentions, suggestions } from "./mentions";

describe("mentions", () => {
  it("follows the node's rule: @ and the whole name, any case", () => {
    expect(mentions("hey @Ana!", "Ana")).toBe(true);
    expect(mentions("@ANA B come", "Ana B")).toBe(true);
    expect(mentions("hey Ana", "Ana")).toBe(false);
    expect(mentions("@Anabel", "Ana")).toBe(false);
    expect(mentions("@Ana1", "Ana")).toBe(false);
    expect(mentions("@", "")).toBe(false);
  });

  it("splits known names out of a text, mine marked", () => {
    expect(splitMentions("hi @ana and @Ben B, not @Zed", ["Ben B", "Ben"], "Ana")).toEqual([
      { text: "hi " },
      { text: "@ana", mention: { me: true } },
      { text: " and " },
      { text: "@Ben B", mention: { me: false } },
      { text: ", not @Zed" },
    ]);
    expect(splitMentions("no mention", ["Ben"], "Ana")).toEqual([{ text: "no mention" }]);
    expect(splitMentions("mail x@ben.org", ["Ben"], "")).toEqual([{ text: "mail x" }, { text: "@ben", mention: { me: false } }, { text: ".org" }]);
  });

  it("finds the @word being typed, not an address", () => {
    expect(mentionQuery("hello @an", 9)).toEqual({ start: 6, query: "an" });
    expect(mentionQuery("@", 1)).toEqual({ start: 0, query: "" });
    expect(mentionQuery("mail x@an", 9)).toBeNull();
    expect(mentionQuery("no at", 5)).toBeNull();
    expect(mentionQuery("@ana\nnext", 9)).toBeNull();
  });

  it("suggests names that start with the query, not mine, no duplicates, capped", () => {
    const names = ["Ana", "Anton", "anton", "Ben", "Andrea", "Anja", "Anouk", "Antje", "Ana"];
    expect(suggestions("an", names, "Ana")).toEqual(["Anton", "Andrea", "Anja", "Anouk", "Antje"].slice(0, MAX_SUGGESTIONS));
    expect(suggestions("ben", names, "Ana")).toEqual(["Ben"]);
    expect(suggestions("B", names, "Ana")).toEqual(["Ben"]);
    // Typed in full: first, so Enter keeps it.
    expect(suggestions("ben", ["Benedikt", "Ben"], "Ana")).toEqual(["Ben", "Benedikt"]);
  });

  it("completes the mention in place with a space after it", () => {
    expect(completeMention("hi @an", 3, 6, "Anton")).toEqual({ text: "hi @Anton ", caret: 10 });
    expect(completeMention("hi @an there", 3, 6, "Anton")).toEqual({ text: "hi @Anton there", caret: 10 });
  });
});
