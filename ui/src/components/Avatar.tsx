import { colorSlot, initials } from "../logic/format";

export function Avatar({ id, name, size = "md" }: { id: string; name: string; size?: "sm" | "md" | "lg" }) {
  return (
    <span className={`avatar avatar-${size} c${colorSlot(id)}`} aria-hidden="true">
      {initials(name)}
    </span>
  );
}
