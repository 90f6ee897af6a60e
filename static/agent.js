// careid: the card-agent page. While the page shows its code, ask every second whether a card
// has signed for it; once one has, send the form (the server finishes the sign-in). Without
// JavaScript the Continue button does the same.
(function () {
  'use strict';
  var form = document.getElementById('agent-form');
  var status = document.getElementById('agent-status');
  if (!form || !window.fetch) { return; }
  var url = form.getAttribute('data-status-url');
  function poll() {
    fetch(url, { credentials: 'same-origin', cache: 'no-store' })
      .then(function (r) { return r.json(); })
      .then(function (s) {
        if (s.state === 'ready') {
          status.textContent = 'Your card has signed in. Continuing…';
          form.submit();
        } else if (s.state === 'expired') {
          status.textContent = 'This sign-in has expired. Go back to the application and start again.';
        } else {
          setTimeout(poll, 1000);
        }
      })
      .catch(function () { setTimeout(poll, 3000); });
  }
  setTimeout(poll, 1000);
})();
