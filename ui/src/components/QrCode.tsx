import { useMemo } from "react";
import { sanitizeSvg } from "../logic/sanitizeSvg";

export function QrCode({ svg, label }: { svg: string; label: string }) {
  const clean = useMemo(() => sanitizeSvg(svg), [svg]);
  if (!clean) return <div className="qr qr-missing">QR code unavailable</div>;
  return <div className="qr" role="img" aria-label={label} dangerouslySetInnerHTML={{ __html: clean }} />;
}
