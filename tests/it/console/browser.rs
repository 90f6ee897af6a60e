//! The RA console in headless Chromium.
