// Scan someone's QR code with the camera, where there is one. Frames are
// decoded on this device (BarcodeDetector where the WebView has it, else the
// bundled jsQR, loaded only when a scan starts); nothing leaves the app.
import { useEffect, useRef, useState } from "react";
import { CameraIcon } from "./Icons";

/** Frames looked at per second: enough to feel instant, light on battery. */
const SCAN_INTERVAL_MS = 200;

type Decoder = (frame: ImageData) => Promise<string | null>;

interface BarcodeDetectorLike {
  detect(source: ImageData): Promise<{ rawValue: string }[]>;
}

async function makeDecoder(): Promise<Decoder> {
  const BD = (globalThis as { BarcodeDetector?: new (o: { formats: string[] }) => BarcodeDetectorLike }).BarcodeDetector;
  if (BD) {
    const d = new BD({ formats: ["qr_code"] });
    return async (frame) => (await d.detect(frame))[0]?.rawValue ?? null;
  }
  const { default: jsQR } = await import("jsqr");
  return async (frame) => jsQR(frame.data, frame.width, frame.height, { inversionAttempts: "dontInvert" })?.data ?? null;
}

export function canScan(): boolean {
  return typeof navigator !== "undefined" && typeof navigator.mediaDevices?.getUserMedia === "function";
}

export function ScanButton({ onCode }: { onCode: (code: string) => void }) {
  const [open, setOpen] = useState(false);
  if (!canScan()) return null;
  return (
    <>
      <button type="button" className="btn btn-ghost btn-sm" onClick={() => setOpen(true)} title="Scan their QR code">
        <CameraIcon width={16} height={16} /> Scan
      </button>
      {open && (
        <Scanner
          onClose={() => setOpen(false)}
          onCode={(c) => {
            setOpen(false);
            onCode(c);
          }}
        />
      )}
    </>
  );
}

function Scanner({ onClose, onCode }: { onClose: () => void; onCode: (code: string) => void }) {
  const video = useRef<HTMLVideoElement>(null);
  const [error, setError] = useState<string | null>(null);
  // The camera starts once per scanner, whatever the parent re-renders.
  const found = useRef(onCode);
  useEffect(() => {
    found.current = onCode;
  });

  useEffect(() => {
    let stream: MediaStream | null = null;
    let timer: ReturnType<typeof setInterval> | null = null;
    let stopped = false;
    const canvas = document.createElement("canvas");
    (async () => {
      try {
        stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" }, audio: false });
        if (stopped) return;
        const v = video.current!;
        v.srcObject = stream;
        await v.play();
        const decode = await makeDecoder();
        let busy = false;
        timer = setInterval(async () => {
          if (busy || stopped || v.videoWidth === 0) return;
          busy = true;
          canvas.width = v.videoWidth;
          canvas.height = v.videoHeight;
          const ctx = canvas.getContext("2d", { willReadFrequently: true });
          if (ctx) {
            ctx.drawImage(v, 0, 0);
            const code = await decode(ctx.getImageData(0, 0, canvas.width, canvas.height)).catch(() => null);
            if (code && !stopped) {
              stopped = true;
              found.current(code);
            }
          }
          busy = false;
        }, SCAN_INTERVAL_MS);
      } catch {
        setError("No camera can be used here. Paste their code instead.");
      }
    })();
    return () => {
      stopped = true;
      if (timer) clearInterval(timer);
      stream?.getTracks().forEach((t) => t.stop());
    };
  }, []);

  return (
    <div className="scanner" role="dialog" aria-label="Scan a QR code">
      {error ? (
        <p className="form-error" role="alert">
          {error}
        </p>
      ) : (
        <video ref={video} className="scanner-video" muted playsInline />
      )}
      <button type="button" className="btn btn-ghost btn-sm" onClick={onClose}>
        {error ? "OK" : "Cancel"}
      </button>
    </div>
  );
}
