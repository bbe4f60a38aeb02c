# The source site's words in English: the reference every other language follows.
# Every language file has exactly these messages, with the same variables
# (tests/languages.rs checks). Plain text only: the pages escape it.
# Numbers and sizes arrive already written ($chars, $size, $limit), except
# counts meant for plural choices ($count, $days, $n), which arrive as numbers.

## How numbers are written in this language (used by the server, not shown alone).
number-group = ,
number-decimal = .
size-bytes = { $n } bytes
size-kb = { $n } KB
size-mb = { $n } MB
size-gb = { $n } GB
size-tb = { $n } TB

## Every page.
site = Secure drop
languages = Languages
not-onion = You are not using this site's onion address. For your safety, open the onion address in Tor Browser.
onion-is = This site's onion address is:
contact = Contact:

## The landing page.
landing-title = Send us documents, safely
landing-intro = This is a secure drop. You can send us documents and a message without an account and without telling us who you are.
instructions-title = Before you send
safety-title = Stay safe
safety-tor = Use Tor Browser with its security level set to Safest.
safety-device = Use a device and a network that are not your employer's.
safety-encrypted = Your files are encrypted on arrival; only the newsroom can read them, on a computer that is never online.
safety-code = After your first submission you get a code. It is the only way back to your conversation with us: nobody can recover it.
start = Send documents or a message
returning = Sent something before? Log in with your code
retention-title = How long this site keeps things
retention-items =
    { $days ->
        [one] What you send is deleted from this server 1 day after it arrives.
       *[other] What you send is deleted from this server { $days } days after it arrives.
    }
retention-pulled =
    { $days ->
        [one] What you send is deleted from this server 1 day after the newsroom has downloaded it.
       *[other] What you send is deleted from this server { $days } days after the newsroom has downloaded it.
    }
retention-inactive =
    { $days ->
        [one] If you do not log in for 1 day, your conversation is deleted, with the newsroom's replies, and your code stops working.
       *[other] If you do not log in for { $days } days, your conversation is deleted, with the newsroom's replies, and your code stops working.
    }

## The form for documents and a message.
submit-title = Send documents or a message
desk-legend = Who should receive it?
desk-advice = Only the desk you choose can read what you send, now and later.
message-label = Message
message-limit = Up to { $chars } characters.
files-label = Files
files-limit =
    { $count ->
        [one] Up to 1 file, { $size } in all.
       *[other] Up to { $count } files, { $size } in all.
    }
send = Send

## The page that shows a new source its code.
code-title = Thank you. Keep this code.
code-paper = Write this code down on paper and keep it somewhere safe, away from your devices.
code-back = With it you can come back later to read our replies and send more.
code-once = It is shown only this once. Nobody, not even we, can recover it.
code-english = The code is made of English words, whatever language this site is in: write them exactly as shown.
go-inbox = Go to your inbox

## Logging in.
login-title = Log in with your code
code-label = Your code (8 words)
code-hint = The 8 English words you were given, separated by spaces.
log-in = Log in
login-failed-title = That did not work
login-failed = That code did not open anything. Check the words and try again.

## The inbox.
inbox-title = Your inbox
received = Received { $day }: { $what }.
received-messages =
    { $n ->
        [one] 1 message
       *[other] { $n } messages
    }
received-files =
    { $n ->
        [one] 1 file
       *[other] { $n } files
    }
received-both = { $messages } and { $files }
received-again = It arrived safely; you do not need to send it again.
your-desk = You are talking to:
new-code-title = Your new code
new-code-advice = Write this new code down now. Your old code keeps working until you confirm below; after that, only the new code opens your inbox.
new-code-confirm = I have written down my new code
replies-title = Replies from the newsroom
no-replies = No replies yet. Check back later.
reply-unreadable = This reply could not be opened.
delete-reply = Delete this reply
follow-up-title = Send more
log-out = Log out
closed-title = Conversation closed
closed = The newsroom has closed this conversation and deleted it from the server, with its replies. Your code no longer works. If you want to send something new, start a new submission: you will get a new code.

## Refusals and errors.
back = Back to the start
nothing-kept = Nothing from this attempt was kept.
error-label = Error:
form-expired-title = Form expired
form-expired = This form was not sent from this site, or it has expired. Go back, reload the page and try again.
form-unreadable-title = Form not readable
form-unreadable = The form could not be read. Go back and try again.
too-slow-title = Too slow
too-slow = The form took too long to arrive. Go back and try again.
too-large-title = Too large
too-large = Your submission is larger than the limit of { $limit }. Send fewer or smaller files, or several submissions.
too-many-files-title = Too many files
too-many-files =
    { $count ->
        [one] You can send at most 1 file at once. Send the rest in another submission.
       *[other] You can send at most { $count } files at once. Send the rest in another submission.
    }
message-too-long-title = Message too long
message-too-long = A message can be at most { $chars } characters long. Put longer text in a file.
message-not-text-title = Message not readable
message-not-text = The message could not be read as text. Put it in a file instead.
empty-title = Nothing to send
empty = Write a message or choose at least one file.
upload-failed-title = Upload failed
upload-failed = The upload could not be read completely. Please try again.
busy-title = Busy
busy-server = The server is busy right now. Please try again in a few minutes.
busy-uploads = Many uploads are running right now. Please try again in a few minutes.
busy-rate = This site is receiving many submissions right now, so it takes no more for a short while. Nothing was stored. Please try again in a few minutes.
no-space-title = Out of space
no-space-server = The server is short of disk space right now. Please try again later.
no-space-uploads = The server has no room for new uploads right now. Please try again later.
gone-title = Conversation closed
gone = The newsroom has closed this conversation. Start a new submission if you want to send more.
no-desk-title = Choose who receives it
no-desk = Choose the desk your submission is for. Nothing was sent.
unknown-desk-title = Unknown desk
unknown-desk = The desk you chose does not exist here (any more). Reload the page and choose again. Nothing was sent.
desk-closed-title = Desk closed
desk-closed = The desk you were talking to no longer takes submissions. You can still log in to read its replies. Nothing was sent.
server-error-title = Server error
server-error = Something went wrong on our side. Please try again later.
session-ended-title = Session ended
session-ended = Your session has ended, so nothing was sent. Log in again with your code, then send your files.
not-found-title = Page not found
not-found = There is no page at this address.
no-reply-title = Not found
no-reply = There is no such reply.
not-allowed-title = Not allowed
not-allowed = This page cannot be used that way.
