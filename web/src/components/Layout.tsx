import { useEffect, useState } from "react";
import { NavLink, Outlet, useLocation } from "react-router-dom";
import { ErrorBoundary } from "./ErrorBoundary";
import { HealthPanel } from "./HealthPanel";
import { LogoutButton } from "../auth/AuthGate";
import { useActiveJobCount } from "../features/jobs/hooks";

const NAV = [
  { section: "Create" },
  { to: "/characters", label: "Characters", icon: "◉" },
  { to: "/dataset", label: "Dataset", icon: "▦" },
  { section: "Train" },
  { to: "/training/new", label: "Start training", icon: "▶" },
  { to: "/training/ongoing", label: "Ongoing", icon: "◔", count: true },
  { to: "/training/history", label: "History", icon: "☰" },
  { to: "/loras", label: "LoRAs", icon: "◈" },
  { section: "Generate" },
  { to: "/generate", label: "Images", icon: "✦" },
  { to: "/video", label: "Video", icon: "▷" },
  { section: "Work" },
  { to: "/jobs", label: "Jobs", icon: "≡" },
] as const;

export function Layout() {
  const location = useLocation();
  const [navOpen, setNavOpen] = useState(false);
  const active = useActiveJobCount();
  useEffect(() => setNavOpen(false), [location.pathname]);

  return (
    <div className={`shell${navOpen ? " nav-open" : ""}`}>
      <div className="topbar">
        <button className="btn icon ghost" aria-label="Open navigation" aria-expanded={navOpen} onClick={() => setNavOpen((v) => !v)}>
          ☰
        </button>
        <span className="brand" style={{ padding: 0 }}>
          <span className="brand-mark" aria-hidden>I</span> Isengard
        </span>
      </div>
      <aside className="sidebar" aria-label="Main navigation">
        <div className="brand">
          <span className="brand-mark" aria-hidden>I</span>
          <span>Isengard</span>
        </div>
        <nav className="nav">
          {NAV.map((item) =>
            "section" in item ? (
              <div className="nav-section" key={item.section}>{item.section}</div>
            ) : (
              <NavLink key={item.to} to={item.to} end={item.to === "/training/new"}>
                <span className="nav-icon" aria-hidden>{item.icon}</span>
                {item.label}
                {"count" in item && active > 0 ? <span className="nav-count" aria-label={`${active} active`}>{active}</span> : null}
              </NavLink>
            ),
          )}
        </nav>
        <div className="sidebar-footer">
          <HealthPanel />
          <LogoutButton />
        </div>
      </aside>
      {navOpen ? <div className="dialog-overlay" style={{ zIndex: 35 }} onClick={() => setNavOpen(false)} aria-hidden /> : null}
      <main className="main" id="main">
        <ErrorBoundary resetKey={location.pathname}>
          <Outlet />
        </ErrorBoundary>
      </main>
    </div>
  );
}
