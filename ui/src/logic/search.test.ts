import { describe, expect, it } from "vitest";
import { highlightWords } from "./search";

describe("highlightWords", () => {
  it("marks the typed words at the start of words, any case", () => {
    expect(highlightWords("Fireworks at the lake, fire!", ["fire"])).toEqual([
      { text: "Fire", hit: true },
      { text: "works at the lake, ", hit: false },
      { text: "fire", hit: true },
      { text: "!", hit: false },
    ]);
    expect(highlightWords("campfire", ["fire"])).toEqual([{ text: "campfire", hit: false }]);
  });

  it("takes regex and quote characters as text", () => {
    expect(highlightWords("a (b) c", ['"(b)"'])).toEqual([
      { text: "a ", hit: false },
      { text: "(b)", hit: true },
      { text: " c", hit: false },
    ]);
    expect(highlightWords("a.b", [".*"])).toEqual([{ text: "a.b", hit: false }]);
    expect(highlightWords("price $5", ["$5"])).toEqual([{ text: "price ", hit: false }, { text: "$5", hit: true }]);
    expect(highlightWords("x", ['"', " "])).toEqual([{ text: "x", hit: false }]);
  });
});
