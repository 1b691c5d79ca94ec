import { Component, type ErrorInfo, type ReactNode } from "react";

interface State {
  error: Error | null;
}

/**
 * A drawing bug must not leave a blank window: show what happened and let the
 * person try again. Drafts live in localStorage, so nothing typed is lost.
 */
export class ErrorBoundary extends Component<{ children: ReactNode }, State> {
  state: State = { error: null };

  static getDerivedStateFromError(error: Error): State {
    return { error };
  }

  componentDidCatch(error: Error, info: ErrorInfo) {
    console.error("Festival Chat UI error", error, info.componentStack);
  }

  render() {
    if (!this.state.error) return this.props.children;
    return (
      <div className="onboarding">
        <div className="onboarding-card">
          <h1>Something went wrong on this screen</h1>
          <p className="lead">Your messages are safe on this device and your drafts are kept.</p>
          <p className="form-error">{this.state.error.message}</p>
          <button type="button" className="btn btn-primary btn-wide" onClick={() => this.setState({ error: null })}>
            Try again
          </button>
        </div>
      </div>
    );
  }
}
