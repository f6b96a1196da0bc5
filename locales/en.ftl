# portcullis — English. Every key here must also be in zh-CN.ftl (a test checks).
# Placeholders: { $name }. Counts choose plural forms: { $n -> [one] … *[other] … }.

## Shared

language-switch = Language
support = Need help?
field-email = Email
field-password = Password
field-username = Username
field-display-name = Display name
field-code = Code
field-mailed-code = Code from the mail
field-new-password = New password
field-current-password = Current password
field-invitation-key = Invitation key
optional = (optional)
send-code = Send code
continue = Continue
save = Save
add = Add
remove = Remove
delete = Delete
search = Search
previous = Previous
next = Next
older = Older
never = never
when = When
from = From
sign-out = Sign out
change-password = Change password
back-to-sign-in = Back to sign in
back-to-account = Back to your account
captcha-label = Type the characters
captcha-alt = Characters to type
dev-captcha-answer = Development mode: the answer is
dev-code = Development mode: the code is
passkey-failed = The passkey did not work: { $error }. Try again or use another way.
password-rules-short = At least 8 characters and hard to guess.
proof-password = Your password
proof-code = or a code from your app
plain = { $text }

## Waits

wait-seconds = { $n ->
    [one] a second
   *[other] { $n } seconds
}
wait-minutes = { $n ->
    [one] a minute
   *[other] { $n } minutes
}
wait-hours = { $n ->
    [one] an hour
   *[other] { $n } hours
}

## Sign-in

login-title = Sign in
login-heading-account = Sign in to your account
login-heading-client = Sign in to continue to { $client }
login-username-or-email = Username or email
login-submit = Sign in
login-with-passkey = Sign in with a passkey
login-forgot = Forgot your password?
login-create-account = Create an account
second-factor-title = Second step
second-factor-heading = Confirm it is you, { $username }
second-factor-code = Code from your authenticator app, or a recovery code
second-factor-verify = Verify
second-factor-passkey = Use a passkey
second-factor-lost = Lost your second factor? Use a recovery code, or ask an administrator to reset it.
totp-add-title = Add an authenticator app
totp-sign-in-needs = This sign-in needs a second factor, and your account has none yet.
totp-scan = Scan the code with an authenticator app (or type the key), then enter the 6-digit code it shows.
totp-qr-alt = QR code for your authenticator app
totp-key = Key:
totp-code-from-app = Code from the app
totp-add-continue = Add and continue
recovery-codes-title = Your recovery codes
recovery-codes-heading = Keep these recovery codes
recovery-codes-explain = Each code signs you in once if you lose your second factor. They are shown only now: print them or store them in a password manager.

## Sign-up

register-title = Create an account
register-heading-client = Create an account to continue to { $client }
register-closed = This server does not take new accounts. Ask its administrator for one.
register-email-first = We will mail you a code to check the address is yours.
register-code-sent = We mailed a code to { $email } if it can take a new account; it works for 10 minutes.
register-username-rules = Up to 64 letters, digits, _, . or -.
register-password-rules = At least 8 characters and hard to guess: common passwords and ones built from your username or email are refused. A few words in a row work well.
register-submit = Create account
register-have-account = Already have an account?

## Consent

consent-title = Allow access?
consent-heading = { $client } wants to access your account
consent-device-warning = A device is asking to sign in as you. Allow only if you started this on a device of your own and it shows the code you typed.
consent-signed-in-as = Signed in as { $username }.
consent-will-be-able = { $client } will be able to:
consent-allow = Allow
consent-deny = Deny
scope-openid = Know who you are (your account id)
scope-profile = See your username and display name
scope-email = See your email address
scope-offline-access = Stay signed in when you are away
scope-other = Use the permission “{ $scope }”

## Password reset

reset-title = Reset your password
reset-intro = Enter the email address of your account; we will mail you a code.
reset-confirm-title = Choose a new password
reset-code-sent = If { $email } has an account, a code is on its way; it works for 10 minutes.
reset-new-code = Send a new code

## Sign-out, devices, errors, messages

logout-title = Sign out?
logout-question = You are signed in as { $username }. Do you want to sign out?
logout-stay = If you did not ask to sign out, close this page: you stay signed in.
device-title = Connect a device
device-intro = Enter the code shown on your device.
error-title = Cannot continue
error-go-back = Go back to the application and try again, or
error-open-account = open your account.
api-key-title = Your API key
api-key-heading = Your new API key
api-key-explain = Copy it now: it is shown only this once. The previous key no longer works.
secret-title = Client secret
secret-client-id = Client id:
secret-copy-now = Copy the secret now: it is shown only this once.
secret-back = Back to the clients
email-confirm-title = Confirm your new address
email-confirm-sent = We mailed a code to { $email } if it can take your account; it works for 10 minutes.
email-confirm-submit = Change my address

## First run

setup-title = Set up
setup-heading = Create the first administrator
setup-intro = This server has no administrator yet. The account you create here manages users, applications and settings. This link works once, for an hour.
setup-submit = Create administrator

## Account

account-title = Your account
account-profile = Profile
account-picture-alt = Your picture
account-picture-preview-alt = Preview of the new picture
account-picture = Picture (PNG, JPEG, GIF or WebP)
account-upload = Upload
account-email = Email address
account-new-email = New address
account-email-now = (now { $email })
account-email-send = Send a code to the new address
account-password-rules = At least 8 characters and hard to guess. Your sessions in apps are signed out; this browser stays signed in.
account-totp = Authenticator app
account-totp-on = An authenticator app is set up.
account-recovery-left = { $n ->
    [one] 1 recovery code left.
   *[other] { $n } recovery codes left.
}
account-new-recovery-codes = New recovery codes
account-totp-remove = Remove the app
account-totp-offer = Add an app such as Aegis, Google Authenticator or 1Password for a code at each sign-in.
account-passkeys = Passkeys
account-passkeys-none = No passkeys yet. A passkey signs you in with your device's screen lock, without a password.
account-passkey-name = Name
account-added = Added
account-last-used = Last used
account-rename = Rename
account-passkey-new-name = Name of the new passkey
account-passkey-default-name = My passkey
account-passkey-add = Add a passkey
account-passkey-needs-js = Adding a passkey needs JavaScript.
account-passkeys-off = Passkeys are off on this server (its public URL is not https or localhost).
account-sessions = Sessions
account-sessions-none = No app or API sessions besides this browser.
account-session-where = Where
account-session-signed-in = Signed in
account-session-last-active = Last active
account-session-ends = Ends
account-revoke-others-explain = Sign out of every app and device that holds a session of yours; this browser stays signed in.
account-revoke-others = Sign out everywhere else
account-api-key-have = You have a personal API key. A new one replaces it at once.
account-api-key-explain = A personal API key lets scripts act as you:
account-api-key-replace = Replace my API key
account-api-key-create = Create an API key
account-apps = Connected apps
account-apps-none = You have not let any application into your account.
account-app = Application
account-app-can = Can
account-revoke = Revoke
account-activity = Recent activity
account-activity-none = Nothing yet.
account-activity-what = What
account-delete = Delete your account
account-delete-explain = Everything goes at once: your sessions, API key, picture, second factors, connected apps and OAuth clients. This cannot be undone.
account-delete-submit = Delete my account
session-api = This server's API
session-device = { $browser } on { $system }

## Admin console

admin-title = Admin
admin-dashboard = Dashboard
admin-users = Users
admin-clients = Clients
admin-events = Events
admin-dashboard-note = Counts of sign-ins are since the server started; the same figures are for Prometheus at
admin-users-search = Search by username, email or name
admin-user = User
admin-roles = Roles
admin-status = Status
admin-actions = Actions
admin-disabled = disabled
admin-active = active
admin-enable = Enable
admin-disable = Disable
admin-revoke-admin = Remove admin
admin-grant-admin = Make admin
admin-reset-mfa = Reset second factors
admin-sure = sure
admin-clients-heading = OAuth clients
admin-client = Client
admin-redirect-uris = Redirect URIs
admin-confidential = confidential
admin-public = public (PKCE)
admin-redirect-uris-lines = Redirect URIs, one per line
admin-origins-lines = Browser origins allowed to call the token endpoint (CORS), one per line
admin-grants = Grants
admin-new-secret = New secret
admin-new-client = New client
admin-client-name = Name
admin-public-explain = Public client (a browser or mobile app: no secret, PKCE)
admin-create-client = Create client
admin-events-heading = Security events
admin-events-kind = Kind, for example
admin-events-subject = About (a user or client id)
admin-filter = Filter
admin-kind = Kind
admin-actor-subject = Actor → subject
admin-detail = Detail

## One-sentence pages

unlocked-title = You can sign in now
unlocked-text = This browser may sign in to your account without waiting, once, within the hour. Go back to the application and sign in.
reset-done-title = Password changed
reset-done-text = Every session was signed out. Sign in again with your new password.
device-approved-title = Device connected
device-approved-text = Your device is signed in. You can close this window and return to it.
device-denied-title = Device not connected
device-denied-text = You refused the request; the device was not signed in.
device-expired-title = Code expired
device-expired-text = This code expired or was already used. Start again on your device.
account-deleted-title = Your account was deleted
account-deleted-text = Everything of your account is gone, and this browser is signed out.
signed-out-title = You are signed out
signed-out-text = You can close this window.
sign-in-again = Sign in again

## How to start over (inside error messages)

again-from-app = Start again from the application.
again-sign-in-page = Open the sign-in page again.
again-account-page = Open your account page again.
again-admin-page = Open the admin page again.
again-page = Open the page again.
again-device = Open the device page again.
again-setup-link = Open the setup link again.

## Notices after an action

done-totp-added = The authenticator app is set up.
done-totp-removed = The authenticator app was removed.
done-passkey-added = The passkey was added.
done-passkey-renamed = The passkey was renamed.
done-passkey-removed = The passkey was removed.
done-profile-saved = Your profile was saved.
done-avatar-saved = Your picture was saved.
done-password-changed = Your password was changed; your sessions in apps were signed out.
done-others-signed-out = Every other session was signed out.
done-session-ended = That session was signed out.
done-email-changed = Your email address was changed; the old address was told.
done-consent-revoked = The application's access was revoked; it will ask again next time.
done-user-disabled = The user was disabled and signed out everywhere.
done-user-enabled = The user was enabled.
done-roles = The roles were changed.
done-mfa-reset = The user's second factors were removed.
done-deleted = Deleted.
done-client-saved = The client was saved.

## Errors

error-generic = Something went wrong; try again.
error-storage-unavailable = The server cannot save anything right now; nothing was changed. Try again in a few seconds.
error-bad-form = The form was not sent correctly.
error-not-a-form = The request must be a form (application/x-www-form-urlencoded).
error-form-expired = The form expired or did not come from this browser. { $again }
error-unknown-language = That language is not available.
error-request-missing = The sign-in request is missing.
error-request-expired = This sign-in request has expired or was already used. Start again from the application.
error-request-completed = This sign-in request was already completed.
error-request-other-client = This sign-in request belongs to another application.
error-no-client-id = The request has no client_id.
error-unknown-client = The application asking you to sign in is not registered here.
error-redirect-uri-unregistered = The redirect_uri is not registered for this application.
error-no-redirect-uri = The request has no redirect_uri.
error-try-again-lookup = The server could not look up the application; try again.
error-try-again-read = The server could not read the request; try again.
error-try-again-save = The server could not save the request; try again.
error-overloaded = Too many people are signing in right now. Try again in { $wait }.
error-throttled = Too many failed attempts. Try again in { $wait }, or use a passkey or the link we mailed to the account.
error-captcha = The characters did not match; try the new image.
error-credentials = The username, email or password is incorrect.
error-session-ended = Your session ended; sign in again.
error-needs-second-factor = This application needs a second factor, and your account has none yet. Add an authenticator app or a passkey to your account, then try again.
error-second-factor-wrong = That did not work. Check the code (a new one appears every 30 seconds) and try again.
error-sign-in-too-long = This sign-in took too long or had too many wrong answers. { $again }
error-enrolment-code = That code did not match. Check the app shows this account, and enter its current code.
error-last-try = That was the last try for this sign-in. { $again }
error-passkey-refused = That passkey was not accepted. Try again, or sign in with your password.
error-choose-allow-deny = Choose Allow or Deny.
error-resend-too-soon = A code was sent less than a minute ago. Use it, or ask again in { $wait }.
error-mail-unavailable = Mail cannot be sent right now; try again in a minute.
error-code-wrong = The code is wrong, used or expired. Check the mail, or ask for a new one.
error-device-code = That code is not valid, or it expired or was already used. Check the code your device shows.
error-unlock-link-dead = This unlock link has expired or was already used.
error-username-taken = That username is taken; choose another.
error-email-registered = That address already has an account. Sign in, or reset its password.
error-invitation-key = That invitation key is not right.
error-registration-closed = This server does not take new accounts.
error-not-current-password = That is not your current password.
error-proof-wrong = That password or code is not right. Nothing was changed.
error-email-in-use = That address already belongs to another account.
error-too-many-wrong = Too many wrong attempts. Try again in { $wait }.
error-took-too-long = That took too long; start again.
error-gone = That no longer exists; nothing was changed.
error-passkey-not-added = The passkey was not accepted; nothing was changed.
error-refused = Not done: { $detail }
error-tick-sure = Tick “sure” next to Delete to delete it.
error-picture-too-large = That picture is too large.
error-picture-unreadable = That picture was not accepted: use a PNG, JPEG, GIF or WebP image.
error-admins-only = The admin console is for administrators.
error-admin-needs-mfa = The admin console needs a sign-in with a second factor. Sign out, and sign in again with your authenticator app or passkey.
error-setup-link-dead = This setup link has expired, was used, or an administrator exists already. Restart the server for a new link, or run `portcullis user create --admin`.

## Refused values (English shows the rule the server gave)

invalid-username = The username { $rule }.
invalid-email = The address { $rule }.
invalid-password = The password { $rule }.
invalid-display-name = The display name { $rule }.
invalid-same-email = That is already your address.
invalid-other = Not accepted: { $rule }.
weak-password = This password is too easy to guess: { $reason }

## Account details

session-device-from = { $device }, { $ip }
event-login = Signed in
event-login-password = Signed in with password
event-login-password-code = Signed in with password and code
event-login-password-passkey = Signed in with password and passkey
event-login-passkey = Signed in with a passkey
event-login-failed = Wrong password
event-second-factor-required = Password right; second step asked
event-second-factor-failed = Wrong second-step answer
event-login-throttled = Sign-ins slowed down after wrong passwords
event-account-unlocked = Unlock link used
event-totp-enrolled = Authenticator app added
event-totp-removed = Authenticator app removed
event-recovery-codes-generated = New recovery codes
event-recovery-code-used = Recovery code used
event-passkey-added = Passkey added
event-passkey-renamed = Passkey renamed
event-passkey-removed = Passkey removed
event-passkey-possibly-cloned = A passkey looked cloned and was refused
event-second-factors-reset = Second factors reset by an administrator
event-password-changed = Password changed
event-password-reset = Password reset
event-refresh-token-reuse = A used sign-in token was presented again; that session ended
event-email-changed = Email address changed
event-session-revoked = A session was signed out
event-consent-revoked = An application's access was revoked

## Admin details

admin-users-summary = Users: { $total }; page { $page } of { $pages }.
admin-users-summary-matching = Matching users: { $total }; page { $page } of { $pages }.
grant-authorization-code = authorization code
grant-refresh-token = refresh token
grant-client-credentials = client credentials
grant-device-code = device code
grant-password = password (legacy)
secret-created = Client created
secret-rotated = New client secret
figure-logins-hour = Sign-ins in the last hour
figure-failures-hour = Failed sign-ins in the last hour
figure-users = Users
figure-sessions = Sign-in sessions (apps and API)
figure-browser-sessions = Browser sessions
figure-clients = OAuth clients
figure-logins-start = Successful sign-ins since start
figure-failures-start = Failed sign-ins since start
figure-throttled-start = Throttled sign-ins since start
figure-uptime = Running for
figure-mail = Mail
figure-database = Database
figure-1000-or-more = 1000 or more
figure-failing = failing
figure-working = working
figure-writable = writable
figure-cannot-write = cannot write

## Mail

mail-support = Questions? Contact { $contact }
mail-registration-subject = Your verification code
mail-registration-intro = Your verification code is
mail-registration-expiry = It expires in { $minutes } minutes and works once. If you did not ask to register, ignore this message.
mail-already-registered-subject = You already have an account
mail-already-registered-body = Someone, maybe you, tried to create an account with this address, but it already has one. Sign in, or reset your password if you forgot it. If it was not you, ignore this message.
mail-reset-subject = Your password reset code
mail-reset-intro = Your password reset code is
mail-reset-expiry = It expires in { $minutes } minutes and works once. If you did not ask to reset your password, ignore this message; your password is unchanged.
mail-change-email-subject = Confirm your new email address
mail-change-email-intro = Your code to confirm this address is
mail-change-email-expiry = It expires in { $minutes } minutes and works once. If you did not ask to change your account's address, ignore this message.
mail-address-in-use-subject = Your address is already in use
mail-address-in-use-body = Someone asked to use this address for their account, but it already belongs to an account here, so nothing changed. If it was you, sign in to that account instead.
mail-email-changed-subject = Your email address was changed
mail-email-changed-body = The email address of the account { $username } was changed to { $new_email }. Mail about the account now goes there.
mail-not-you-reset = If you did not do this, reset your password now and contact your administrator.
mail-password-changed-subject = Your password was changed
mail-password-changed-body = The password of the account { $username } was just changed, and your other sessions were signed out.
mail-unlock-subject = Someone tried to sign in as you
mail-unlock-intro = Someone tried to sign in as { $username } with a wrong password several times, so password sign-ins to this account are being slowed down.
mail-unlock-act = If it was you, open this link to sign in without waiting (it works once, for { $minutes } minutes):
mail-unlock-not-you = If it was not you, your account is safe as long as your password is strong; consider changing it, or adding a passkey or an authenticator app.
mail-test-subject = { $brand } test message
mail-test-body = This is a test message from { $brand }. Mail delivery works.

## Upstream identity providers

login-with-upstream = Sign in with { $upstream }
login-or = or
upstream-account-title = Continue with { $upstream }
upstream-account-intro = Your { $upstream } account is not linked to an account here yet.
upstream-link-heading = Link it to your account here
upstream-address-taken = An account here already uses this address. Sign in to it once to link the two; a matching address alone never links them.
upstream-link-submit = Link and sign in
upstream-create-heading = Or create a new account
upstream-create-submit = Create the account
upstream-no-new-accounts = This provider cannot create new accounts here: sign in to an existing one to link it.
account-identities = Sign-in providers
account-identities-none = No other provider is linked to your account.
account-identity-linked = Linked
account-identity-link = Link { $upstream }
account-identity-unlink = Unlink
done-identity-linked = The provider was linked: you can sign in with it now.
done-identity-unlinked = The provider was unlinked.
error-upstream-unknown = That sign-in provider does not exist or is switched off.
error-upstream-state = This sign-in expired or was started in another browser. Start again from the sign-in page.
error-upstream-refused = The provider did not sign you in (you may have cancelled). Start again, or sign in another way.
error-upstream-unreachable = The provider could not be reached or did not answer in time. Try again later, or sign in another way.
error-upstream-invalid = The provider's answer could not be trusted, so you were not signed in. Try again, or sign in another way.
error-upstream-no-account = No account could be linked to this identity. Sign in another way.
error-upstream-linked-elsewhere = That identity is linked to another account, or this account already has one from this provider.
error-upstream-email-taken = An account here already uses this address: sign in to it above to link the two.
event-upstream-sign-in = Signed in through a provider
event-identity-linked = Sign-in provider linked
event-identity-unlinked = Sign-in provider unlinked
error-upstream-link-needs-mfa = This account has a second factor. Sign in to it with the second step, then link the provider from your account page.
admin-upstreams = Sign-in providers
admin-upstreams-heading = Upstream identity providers
admin-upstreams-none = No provider yet: people sign in with their password or a passkey.
admin-upstream = Provider
admin-upstream-redirect = Redirect URI to register there
admin-upstream-add = Add or change a provider
admin-upstream-id = Id (lower-case letters, digits and -; part of the callback URL)
admin-upstream-preset = Preset
admin-upstream-generic = OpenID Connect (give the issuer)
admin-upstream-issuer = Issuer (OpenID Connect)
admin-upstream-accounts = First sign-in of someone without an account
admin-linked = Linked: { $providers }
done-upstream-saved = The provider was saved.
