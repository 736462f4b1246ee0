import { Component, type ErrorInfo, type ReactNode } from "react";
import { logger } from "../lib/logger";

interface State {
  error: Error | null;
}

/** A render error shows a message and a way back instead of a blank page; the error goes to the server log. */
export class ErrorBoundary extends Component<{ children: ReactNode; resetKey?: string }, State> {
  state: State = { error: null };

  static getDerivedStateFromError(error: Error): State {
    return { error };
  }

  componentDidCatch(error: Error, info: ErrorInfo): void {
    logger.error(`render error: ${error.message}`, { stack: String(error.stack ?? ""), componentStack: String(info.componentStack ?? "") });
  }

  componentDidUpdate(previous: { resetKey?: string }): void {
    if (this.state.error && previous.resetKey !== this.props.resetKey) this.setState({ error: null });
  }

  render(): ReactNode {
    if (!this.state.error) return this.props.children;
    return (
      <div className="page">
        <div className="alert danger" role="alert">
          <div style={{ flex: 1 }}>
            <div className="alert-title">This page hit an error</div>
            <p>{this.state.error.message || "An unexpected error occurred."} It has been reported.</p>
          </div>
          <button className="btn sm" onClick={() => this.setState({ error: null })}>Try again</button>
          <a className="btn sm" href="/">Home</a>
        </div>
      </div>
    );
  }
}
