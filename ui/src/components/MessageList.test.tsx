import { fireEvent, render, screen } from "@testing-library/react";
import { describe, expect, it, vi } from "vitest";
import { ANA_AUTHOR, ME, message } from "../test/stubApi";
import { MessageList } from "./MessageList";

function list(onAuthor = vi.fn()) {
  const theirs = message({ body: { type: "text", text: "first, from Ana" } });
  const mine = message({ author: ME, mine: true, body: { type: "text", text: "mine, last" } });
  render(
    <MessageList
      messages={[theirs, mine]}
      loading={false}
      hasOlder={false}
      startLabel="start"
      authorOf={() => ANA_AUTHOR}
      deliveryOf={() => null}
      direct={false}
      onLoadOlder={() => {}}
      onAuthor={onAuthor}
    />,
  );
  return { theirs, mine, onAuthor };
}

describe("the message list with the keyboard", () => {
  it("is one Tab stop; the arrows, Home and End move between messages; Escape goes back to the list", () => {
    const { theirs, mine } = list();
    const log = screen.getByRole("log");
    expect(log).toHaveAttribute("tabindex", "0");
    // The author's name is a button for the mouse, out of the Tab order.
    for (const b of screen.queryAllByRole("button")) expect(b).toHaveAttribute("tabindex", "-1");
    log.focus();
    fireEvent.keyDown(log, { key: "ArrowUp" });
    expect(document.activeElement?.getAttribute("data-id")).toBe(mine.id);
    fireEvent.keyDown(document.activeElement!, { key: "ArrowUp" });
    expect(document.activeElement?.getAttribute("data-id")).toBe(theirs.id);
    fireEvent.keyDown(document.activeElement!, { key: "End" });
    expect(document.activeElement?.getAttribute("data-id")).toBe(mine.id);
    fireEvent.keyDown(document.activeElement!, { key: "Home" });
    expect(document.activeElement?.getAttribute("data-id")).toBe(theirs.id);
    fireEvent.keyDown(document.activeElement!, { key: "Escape" });
    expect(document.activeElement).toBe(log);
  });

  it("Enter on someone's message messages its author; on mine, nothing", () => {
    const { theirs, onAuthor } = list();
    const log = screen.getByRole("log");
    log.focus();
    fireEvent.keyDown(log, { key: "End" });
    fireEvent.keyDown(document.activeElement!, { key: "Enter" });
    expect(onAuthor).not.toHaveBeenCalled();
    fireEvent.keyDown(document.activeElement!, { key: "Home" });
    fireEvent.keyDown(document.activeElement!, { key: "Enter" });
    expect(onAuthor).toHaveBeenCalledWith(theirs.author);
  });
});
