"""Third-party clients of Mailpit's and MailHog's APIs, driven unchanged against mailsink."""
