# portcullis — 简体中文。每个键都必须与 en.ftl 一一对应（有测试检查）。
# 占位符写作 { $name }。中文没有复数变化，计数直接写数字。

## 通用

language-switch = 语言
support = 需要帮助？
field-email = 邮箱
field-password = 密码
field-username = 用户名
field-display-name = 显示名称
field-code = 验证码
field-mailed-code = 邮件中的验证码
field-new-password = 新密码
field-current-password = 当前密码
field-invitation-key = 邀请码
optional = （可选）
send-code = 发送验证码
continue = 继续
save = 保存
add = 添加
remove = 移除
delete = 删除
search = 搜索
previous = 上一页
next = 下一页
older = 更早
never = 从未
when = 时间
from = 来源
sign-out = 退出登录
change-password = 修改密码
back-to-sign-in = 返回登录
back-to-account = 返回我的账号
captcha-label = 请输入图中的字符
captcha-alt = 需要输入的字符
dev-captcha-answer = 开发模式：答案是
dev-code = 开发模式：验证码是
passkey-failed = 通行密钥未能使用：{ $error }。请重试，或换一种方式。
password-rules-short = 至少 8 个字符，且不易被猜到。
proof-password = 你的密码
proof-code = 或验证器应用中的动态码
plain = { $text }

## 等待时间

wait-seconds = { $n } 秒
wait-minutes = { $n } 分钟
wait-hours = { $n } 小时

## 登录

login-title = 登录
login-heading-account = 登录你的账号
login-heading-client = 登录以继续使用 { $client }
login-username-or-email = 用户名或邮箱
login-submit = 登录
login-with-passkey = 使用通行密钥登录
login-forgot = 忘记密码？
login-create-account = 注册账号
second-factor-title = 第二步验证
second-factor-heading = { $username }，请确认是你本人
second-factor-code = 验证器应用中的动态码，或一个恢复码
second-factor-verify = 验证
second-factor-passkey = 使用通行密钥
second-factor-lost = 第二因素丢失了？请使用恢复码，或请管理员为你重置。
totp-add-title = 添加验证器应用
totp-sign-in-needs = 这次登录需要第二因素，而你的账号还没有设置。
totp-scan = 用验证器应用扫描二维码（或手动输入密钥），然后输入应用显示的 6 位动态码。
totp-qr-alt = 供验证器应用扫描的二维码
totp-key = 密钥：
totp-code-from-app = 应用中的动态码
totp-add-continue = 添加并继续
recovery-codes-title = 你的恢复码
recovery-codes-heading = 请保存好这些恢复码
recovery-codes-explain = 丢失第二因素时，每个恢复码可用于登录一次。它们只显示这一次：请打印出来，或保存到密码管理器中。

## 注册

register-title = 注册账号
register-heading-client = 注册账号以继续使用 { $client }
register-closed = 本服务器不开放注册。请向管理员申请账号。
register-email-first = 我们会向你的邮箱发送验证码，以确认这个地址属于你。
register-code-sent = 如果 { $email } 可以注册新账号，验证码已发送到该邮箱，10 分钟内有效。
register-username-rules = 最多 64 个字符，可使用字母、数字、_、. 或 -。
register-password-rules = 至少 8 个字符，且不易被猜到：常见密码以及由用户名或邮箱组成的密码会被拒绝。几个词连在一起就很好。
register-submit = 注册
register-have-account = 已有账号？

## 授权同意

consent-title = 允许访问？
consent-heading = { $client } 请求访问你的账号
consent-device-warning = 有一台设备请求以你的身份登录。只有当这是你自己在自己的设备上发起、且设备上显示的正是你输入的验证码时，才点“允许”。
consent-signed-in-as = 当前登录身份：{ $username }。
consent-will-be-able = { $client } 将能够：
consent-allow = 允许
consent-deny = 拒绝
scope-openid = 知道你是谁（你的账号 ID）
scope-profile = 查看你的用户名和显示名称
scope-email = 查看你的邮箱地址
scope-offline-access = 在你离开时保持登录
scope-other = 使用权限“{ $scope }”

## 重置密码

reset-title = 重置密码
reset-intro = 请输入你账号的邮箱地址，我们会向它发送验证码。
reset-confirm-title = 设置新密码
reset-code-sent = 如果 { $email } 有对应的账号，验证码已在路上，10 分钟内有效。
reset-new-code = 重新发送验证码

## 退出、设备、错误、提示

logout-title = 退出登录？
logout-question = 你当前以 { $username } 的身份登录。要退出登录吗？
logout-stay = 如果不是你要求退出，请关闭此页面：你会保持登录状态。
device-title = 连接设备
device-intro = 请输入设备上显示的验证码。
error-title = 无法继续
error-go-back = 请返回应用重试，或
error-open-account = 打开你的账号。
api-key-title = 你的 API 密钥
api-key-heading = 你的新 API 密钥
api-key-explain = 请立即复制：它只显示这一次。之前的密钥已失效。
secret-title = 客户端密钥
secret-client-id = 客户端 ID：
secret-copy-now = 请立即复制密钥：它只显示这一次。
secret-back = 返回客户端列表
email-confirm-title = 确认新的邮箱地址
email-confirm-sent = 如果 { $email } 可以用于你的账号，验证码已发送到该邮箱，10 分钟内有效。
email-confirm-submit = 更换邮箱地址

## 首次运行

setup-title = 初始设置
setup-heading = 创建第一个管理员
setup-intro = 本服务器还没有管理员。在这里创建的账号将管理用户、应用和设置。此链接只能使用一次，一小时内有效。
setup-submit = 创建管理员

## 我的账号

account-title = 我的账号
account-profile = 个人资料
account-picture-alt = 你的头像
account-picture-preview-alt = 新头像预览
account-picture = 头像（PNG、JPEG、GIF 或 WebP）
account-upload = 上传
account-email = 邮箱地址
account-new-email = 新地址
account-email-now = （当前为 { $email }）
account-email-send = 向新地址发送验证码
account-password-rules = 至少 8 个字符，且不易被猜到。你在各应用中的会话会被退出；当前浏览器保持登录。
account-totp = 验证器应用
account-totp-on = 已设置验证器应用。
account-recovery-left = 剩余 { $n } 个恢复码。
account-new-recovery-codes = 生成新的恢复码
account-totp-remove = 移除验证器应用
account-totp-offer = 添加 Aegis、Google Authenticator 或 1Password 等应用，每次登录时输入动态码。
account-passkeys = 通行密钥
account-passkeys-none = 还没有通行密钥。通行密钥让你用设备的屏幕锁登录，无需密码。
account-passkey-name = 名称
account-added = 添加时间
account-last-used = 最近使用
account-rename = 重命名
account-passkey-new-name = 新通行密钥的名称
account-passkey-default-name = 我的通行密钥
account-passkey-add = 添加通行密钥
account-passkey-needs-js = 添加通行密钥需要启用 JavaScript。
account-passkeys-off = 本服务器未启用通行密钥（其公开地址不是 https 或 localhost）。
account-sessions = 会话
account-sessions-none = 除当前浏览器外，没有应用或 API 会话。
account-session-where = 位置
account-session-signed-in = 登录时间
account-session-last-active = 最近活动
account-session-ends = 到期时间
account-revoke-others-explain = 退出所有持有你会话的应用和设备；当前浏览器保持登录。
account-revoke-others = 退出其他所有会话
account-api-key-have = 你已有个人 API 密钥。新建的密钥会立即替换它。
account-api-key-explain = 个人 API 密钥让脚本以你的身份操作：
account-api-key-replace = 替换我的 API 密钥
account-api-key-create = 创建 API 密钥
account-apps = 已连接的应用
account-apps-none = 你还没有授权任何应用访问你的账号。
account-app = 应用
account-app-can = 权限
account-revoke = 撤销
account-activity = 最近活动
account-activity-none = 暂无记录。
account-activity-what = 事件
account-delete = 删除账号
account-delete-explain = 所有内容会立即删除：会话、API 密钥、头像、第二因素、已连接的应用和 OAuth 客户端。此操作无法撤销。
account-delete-submit = 删除我的账号
session-api = 本服务器的 API
session-device = { $system } 上的 { $browser }

## 管理控制台

admin-title = 管理
admin-dashboard = 概览
admin-users = 用户
admin-clients = 客户端
admin-events = 事件
admin-dashboard-note = 登录次数从服务器启动时开始统计；Prometheus 可在此读取相同的数据：
admin-users-search = 按用户名、邮箱或名称搜索
admin-user = 用户
admin-roles = 角色
admin-status = 状态
admin-actions = 操作
admin-disabled = 已停用
admin-active = 正常
admin-enable = 启用
admin-disable = 停用
admin-revoke-admin = 取消管理员
admin-grant-admin = 设为管理员
admin-reset-mfa = 重置第二因素
admin-sure = 确定
admin-clients-heading = OAuth 客户端
admin-client = 客户端
admin-redirect-uris = 重定向 URI
admin-confidential = 机密客户端
admin-public = 公开客户端（PKCE）
admin-redirect-uris-lines = 重定向 URI，每行一个
admin-origins-lines = 允许调用令牌端点的浏览器源（CORS），每行一个
admin-grants = 授权类型
admin-new-secret = 生成新密钥
admin-new-client = 新建客户端
admin-client-name = 名称
admin-public-explain = 公开客户端（浏览器或移动应用：无密钥，使用 PKCE）
admin-create-client = 创建客户端
admin-events-heading = 安全事件
admin-events-kind = 类型，例如
admin-events-subject = 对象（用户或客户端 ID）
admin-filter = 筛选
admin-kind = 类型
admin-actor-subject = 操作者 → 对象
admin-detail = 详情

## 单句页面

unlocked-title = 现在可以登录了
unlocked-text = 此浏览器可在一小时内无需等待登录你的账号一次。请返回应用登录。
reset-done-title = 密码已修改
reset-done-text = 所有会话都已退出。请用新密码重新登录。
device-approved-title = 设备已连接
device-approved-text = 你的设备已登录。可以关闭此窗口，回到设备上继续。
device-denied-title = 设备未连接
device-denied-text = 你拒绝了请求；设备没有登录。
device-expired-title = 验证码已过期
device-expired-text = 此验证码已过期或已被使用。请在设备上重新开始。
account-deleted-title = 你的账号已删除
account-deleted-text = 你账号的所有内容都已删除，此浏览器也已退出登录。
signed-out-title = 你已退出登录
signed-out-text = 可以关闭此窗口了。
sign-in-again = 重新登录

## 如何重新开始（用于错误信息中）

again-from-app = 请从应用重新开始。
again-sign-in-page = 请重新打开登录页面。
again-account-page = 请重新打开账号页面。
again-admin-page = 请重新打开管理页面。
again-page = 请重新打开此页面。
again-device = 请重新打开设备页面。
again-setup-link = 请重新打开设置链接。

## 操作后的提示

done-totp-added = 验证器应用已设置好。
done-totp-removed = 验证器应用已移除。
done-passkey-added = 通行密钥已添加。
done-passkey-renamed = 通行密钥已重命名。
done-passkey-removed = 通行密钥已移除。
done-profile-saved = 个人资料已保存。
done-avatar-saved = 头像已保存。
done-password-changed = 密码已修改；你在各应用中的会话已退出。
done-others-signed-out = 其他所有会话都已退出。
done-session-ended = 该会话已退出。
done-email-changed = 邮箱地址已更换；已通知原邮箱。
done-consent-revoked = 已撤销该应用的访问权限；它下次会重新请求授权。
done-user-disabled = 该用户已停用，并已在所有地方退出登录。
done-user-enabled = 该用户已启用。
done-roles = 角色已修改。
done-mfa-reset = 该用户的第二因素已移除。
done-deleted = 已删除。
done-client-saved = 客户端已保存。

## 错误

error-generic = 出了点问题，请重试。
error-storage-unavailable = 服务器暂时无法保存数据；没有任何改动。请几秒后重试。
error-bad-form = 表单没有正确提交。
error-not-a-form = 请求必须是表单（application/x-www-form-urlencoded）。
error-form-expired = 表单已过期，或不是从此浏览器提交的。{ $again }
error-unknown-language = 不支持该语言。
error-request-missing = 缺少登录请求。
error-request-expired = 此登录请求已过期或已被使用。请从应用重新开始。
error-request-completed = 此登录请求已经完成。
error-request-other-client = 此登录请求属于另一个应用。
error-no-client-id = 请求中没有 client_id。
error-unknown-client = 请求你登录的应用未在此注册。
error-redirect-uri-unregistered = 此应用未注册该 redirect_uri。
error-no-redirect-uri = 请求中没有 redirect_uri。
error-try-again-lookup = 服务器无法查询该应用，请重试。
error-try-again-read = 服务器无法读取该请求，请重试。
error-try-again-save = 服务器无法保存该请求，请重试。
error-overloaded = 当前登录的人太多。请在 { $wait }后重试。
error-throttled = 失败次数过多。请在 { $wait }后重试，或使用通行密钥，或使用我们发送到账号邮箱的链接。
error-captcha = 字符不匹配，请看新的图片再试。
error-credentials = 用户名、邮箱或密码不正确。
error-session-ended = 你的会话已结束，请重新登录。
error-needs-second-factor = 此应用需要第二因素，而你的账号还没有。请先在账号中添加验证器应用或通行密钥，然后重试。
error-second-factor-wrong = 验证失败。请检查动态码（每 30 秒更新一次）后重试。
error-sign-in-too-long = 此次登录耗时过长，或错误次数过多。{ $again }
error-enrolment-code = 动态码不匹配。请确认应用中显示的是此账号，并输入当前的动态码。
error-last-try = 这已是此次登录的最后一次尝试。{ $again }
error-passkey-refused = 该通行密钥未被接受。请重试，或使用密码登录。
error-choose-allow-deny = 请选择“允许”或“拒绝”。
error-resend-too-soon = 一分钟内已发送过验证码。请使用那个验证码，或在 { $wait }后再申请。
error-mail-unavailable = 暂时无法发送邮件，请一分钟后重试。
error-code-wrong = 验证码错误、已使用或已过期。请查看邮件，或重新获取验证码。
error-device-code = 该验证码无效、已过期或已被使用。请核对设备上显示的验证码。
error-unlock-link-dead = 此解锁链接已过期或已被使用。
error-username-taken = 该用户名已被占用，请换一个。
error-email-registered = 该邮箱已注册账号。请直接登录，或重置其密码。
error-invitation-key = 邀请码不正确。
error-registration-closed = 本服务器不开放注册。
error-not-current-password = 这不是你当前的密码。
error-proof-wrong = 密码或动态码不正确。没有任何改动。
error-email-in-use = 该邮箱已属于另一个账号。
error-too-many-wrong = 错误次数过多。请在 { $wait }后重试。
error-took-too-long = 耗时过长，请重新开始。
error-gone = 该项目已不存在；没有任何改动。
error-passkey-not-added = 该通行密钥未被接受；没有任何改动。
error-refused = 未完成：{ $detail }
error-tick-sure = 请勾选“删除”旁的“确定”后再删除。
error-picture-too-large = 图片太大了。
error-picture-unreadable = 图片未被接受：请使用 PNG、JPEG、GIF 或 WebP 图片。
error-admins-only = 管理控制台仅供管理员使用。
error-admin-needs-mfa = 管理控制台需要使用第二因素登录。请退出，再用验证器应用或通行密钥重新登录。
error-setup-link-dead = 此设置链接已过期、已被使用，或已经存在管理员。请重启服务器获取新链接，或运行 `portcullis user create --admin`。

## 被拒绝的输入

invalid-username = 用户名只能包含 1 到 64 个字母、数字、_、. 或 -，且不能混用不同文字系统的字母。
invalid-email = 邮箱地址格式不正确，应类似 name@example.com。
invalid-password = 密码长度须为 8 到 256 个字符。
invalid-display-name = 显示名称最多 64 个字符，且不能包含控制字符或不可见字符。
invalid-same-email = 这已经是你的邮箱地址。
invalid-other = 输入未被接受：{ $rule }。
weak-password = 这个密码太容易被猜到。请使用更长、更少见的词组合。

## 账号详情

session-device-from = { $device }，{ $ip }
event-login = 登录
event-login-password = 使用密码登录
event-login-password-code = 使用密码和动态码登录
event-login-password-passkey = 使用密码和通行密钥登录
event-login-passkey = 使用通行密钥登录
event-login-failed = 密码错误
event-second-factor-required = 密码正确；要求第二步验证
event-second-factor-failed = 第二步验证失败
event-login-throttled = 因密码错误，登录被放慢
event-account-unlocked = 使用了解锁链接
event-totp-enrolled = 添加了验证器应用
event-totp-removed = 移除了验证器应用
event-recovery-codes-generated = 生成了新的恢复码
event-recovery-code-used = 使用了恢复码
event-passkey-added = 添加了通行密钥
event-passkey-renamed = 重命名了通行密钥
event-passkey-removed = 移除了通行密钥
event-passkey-possibly-cloned = 一个通行密钥疑似被复制，已拒绝
event-second-factors-reset = 管理员重置了第二因素
event-password-changed = 修改了密码
event-password-reset = 重置了密码
event-refresh-token-reuse = 已使用过的登录令牌被再次出示；该会话已结束
event-email-changed = 更换了邮箱地址
event-session-revoked = 一个会话被退出
event-consent-revoked = 撤销了一个应用的访问权限

## 管理详情

admin-users-summary = 用户：{ $total } 个；第 { $page } 页，共 { $pages } 页。
admin-users-summary-matching = 匹配的用户：{ $total } 个；第 { $page } 页，共 { $pages } 页。
grant-authorization-code = 授权码
grant-refresh-token = 刷新令牌
grant-client-credentials = 客户端凭据
grant-device-code = 设备码
grant-password = 密码（旧式）
secret-created = 客户端已创建
secret-rotated = 新的客户端密钥
figure-logins-hour = 最近一小时登录次数
figure-failures-hour = 最近一小时登录失败次数
figure-users = 用户数
figure-sessions = 登录会话（应用和 API）
figure-browser-sessions = 浏览器会话
figure-clients = OAuth 客户端
figure-logins-start = 启动以来成功登录次数
figure-failures-start = 启动以来失败登录次数
figure-throttled-start = 启动以来被限速的登录次数
figure-uptime = 已运行
figure-mail = 邮件
figure-database = 数据库
figure-1000-or-more = 1000 次或更多
figure-failing = 发送失败
figure-working = 正常
figure-writable = 可写入
figure-cannot-write = 无法写入

## 邮件

mail-support = 有疑问？请联系 { $contact }
mail-registration-subject = 你的验证码
mail-registration-intro = 你的验证码是
mail-registration-expiry = 验证码 { $minutes } 分钟内有效，只能使用一次。如果你没有申请注册，请忽略此邮件。
mail-already-registered-subject = 你已经有账号了
mail-already-registered-body = 有人（也许是你）试图用这个邮箱注册账号，但该邮箱已有账号。请直接登录；如果忘记了密码，请重置密码。如果不是你本人操作，请忽略此邮件。
mail-reset-subject = 你的密码重置验证码
mail-reset-intro = 你的密码重置验证码是
mail-reset-expiry = 验证码 { $minutes } 分钟内有效，只能使用一次。如果你没有申请重置密码，请忽略此邮件；你的密码没有变化。
mail-change-email-subject = 确认你的新邮箱地址
mail-change-email-intro = 用于确认此邮箱地址的验证码是
mail-change-email-expiry = 验证码 { $minutes } 分钟内有效，只能使用一次。如果你没有申请更换账号邮箱，请忽略此邮件。
mail-address-in-use-subject = 你的邮箱地址已被使用
mail-address-in-use-body = 有人申请将此邮箱地址用于他的账号，但它已属于这里的一个账号，因此没有任何改动。如果是你本人，请直接登录那个账号。
mail-email-changed-subject = 你的邮箱地址已更换
mail-email-changed-body = 账号 { $username } 的邮箱地址已更换为 { $new_email }。今后有关该账号的邮件将发送到新地址。
mail-not-you-reset = 如果这不是你本人操作，请立即重置密码并联系管理员。
mail-password-changed-subject = 你的密码已修改
mail-password-changed-body = 账号 { $username } 的密码刚刚被修改，你的其他会话已退出。
mail-unlock-subject = 有人试图以你的身份登录
mail-unlock-intro = 有人多次使用错误的密码尝试以 { $username } 的身份登录，因此该账号的密码登录已被放慢。
mail-unlock-act = 如果是你本人，打开此链接即可无需等待登录（只能使用一次，{ $minutes } 分钟内有效）：
mail-unlock-not-you = 如果不是你本人，只要你的密码足够强，账号就是安全的；建议修改密码，或添加通行密钥或验证器应用。
mail-test-subject = { $brand } 测试邮件
mail-test-body = 这是一封来自 { $brand } 的测试邮件。邮件发送正常。

## 上游身份提供方

login-with-upstream = 使用 { $upstream } 登录
login-or = 或
upstream-account-title = 通过 { $upstream } 继续
upstream-account-intro = 你的 { $upstream } 账号还没有关联到这里的账号。
upstream-link-heading = 关联到你在这里的账号
upstream-address-taken = 这里已有账号使用此邮箱地址。请登录该账号一次以完成关联；仅凭邮箱相同绝不会自动关联。
upstream-link-submit = 关联并登录
upstream-create-heading = 或者创建新账号
upstream-create-submit = 创建账号
upstream-no-new-accounts = 此身份提供方不能在这里创建新账号：请登录已有账号来完成关联。
account-identities = 登录方式
account-identities-none = 你的账号还没有关联其他身份提供方。
account-identity-linked = 关联时间
account-identity-link = 关联 { $upstream }
account-identity-unlink = 取消关联
done-identity-linked = 已关联该身份提供方：现在可以用它登录了。
done-identity-unlinked = 已取消关联该身份提供方。
error-upstream-unknown = 该登录方式不存在或已停用。
error-upstream-state = 此次登录已过期，或是在另一个浏览器中发起的。请从登录页面重新开始。
error-upstream-refused = 身份提供方没有让你登录（你可能取消了）。请重新开始，或换一种方式登录。
error-upstream-unreachable = 无法连接身份提供方，或它没有及时响应。请稍后重试，或换一种方式登录。
error-upstream-invalid = 身份提供方的响应无法被信任，因此你没有登录。请重试，或换一种方式登录。
error-upstream-no-account = 无法为此身份关联账号。请换一种方式登录。
error-upstream-linked-elsewhere = 该身份已关联到另一个账号，或此账号已关联了该身份提供方的另一个身份。
error-upstream-email-taken = 这里已有账号使用此邮箱地址：请在上方登录该账号以完成关联。
event-upstream-sign-in = 通过身份提供方登录
event-identity-linked = 关联了登录方式
event-identity-unlinked = 取消关联了登录方式
error-upstream-link-needs-mfa = 此账号设置了第二因素。请先完成两步验证登录，再在账号页面关联该身份提供方。
admin-upstreams = 登录方式
admin-upstreams-heading = 上游身份提供方
admin-upstreams-none = 还没有身份提供方：用户使用密码或通行密钥登录。
admin-upstream = 身份提供方
admin-upstream-redirect = 需在对方注册的重定向 URI
admin-upstream-add = 添加或修改身份提供方
admin-upstream-id = ID（小写字母、数字和 -；用于回调地址）
admin-upstream-preset = 预设
admin-upstream-generic = OpenID Connect（填写 issuer）
admin-upstream-issuer = Issuer（OpenID Connect）
admin-upstream-accounts = 没有账号的人首次登录时
admin-linked = 已关联：{ $providers }
done-upstream-saved = 身份提供方已保存。
