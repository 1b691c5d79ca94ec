import { useEffect, useState } from "react";
import { useApi } from "../ApiContext";
import { toApiError } from "../api";
import type { MyCode } from "../model";
import { QrCode } from "./QrCode";
import { CopyIcon } from "./Icons";

/** Your QR code, fingerprint and code to share, for in-person verification. */
export function MyCodeCard() {
  const api = useApi();
  const [code, setCode] = useState<MyCode | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [copied, setCopied] = useState(false);

  useEffect(() => {
    api.myCode().then(setCode, (e) => setError(toApiError(e).message));
  }, [api]);

  if (error) return <p className="form-error" role="alert">Could not load your code: {error}</p>;
  if (!code) return <div className="qr qr-loading" aria-busy="true" />;

  const copy = () => {
    navigator.clipboard?.writeText(code.code).then(
      () => {
        setCopied(true);
        setTimeout(() => setCopied(false), 1500);
      },
      () => {},
    );
  };

  return (
    <div className="mycode">
      <QrCode svg={code.qr_svg} label="Your verification QR code" />
      <div className="fingerprint" aria-label="Your fingerprint">
        {code.fingerprint}
      </div>
      <p className="muted small">Friends scan this or compare the fingerprint with you in person.</p>
      <div className="code-row">
        <input className="code-text" readOnly value={code.code} aria-label="Your code" onFocus={(e) => e.currentTarget.select()} />
        <button type="button" className="btn btn-ghost" onClick={copy} title="Copy code">
          <CopyIcon width={16} height={16} /> {copied ? "Copied" : "Copy"}
        </button>
      </div>
    </div>
  );
}
